import {
  certificateScheduleProblem,
  readRotationSettings,
  ROTATION_DEFAULTS,
  ROTATION_ENV,
  ROTATION_SCHEDULE_DEFAULTS_DAYS,
  rotationEnvironment,
  RotationSettings,
} from '../../core/rotation-contract';

const SETTINGS: RotationSettings = {
  verificationKeysSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lg/session-verification-keys-AbCdEf',
  backendCaSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lg/backend-ca-AbCdEf',
  frontendDomainName: 'looker.example.com',
};

describe('the rotation contract', () => {
  test('the environment the construct sets reads back as the same settings, defaults filled in', () => {
    const env = rotationEnvironment(SETTINGS);
    expect(env[ROTATION_ENV.sessionAlgorithm]).toBe('ES256');
    expect(readRotationSettings(env)).toEqual({ ...ROTATION_DEFAULTS, ...SETTINGS });
  });

  test('CloudFormation tokens are accepted where ARNs and names are expected', () => {
    expect(() => rotationEnvironment({ ...SETTINGS, verificationKeysSecretArn: '${Token[TOKEN.123]}', frontendDomainName: '${Token[TOKEN.7]}' })).not.toThrow();
  });

  test.each([
    [{ sessionAlgorithm: 'HS256' }, 'sessionAlgorithm "HS256" is not supported: use one of ES256, RS256.'],
    [
      { backendCaSecretArn: 'backend-ca' },
      'backendCaSecretArn "backend-ca" is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>).',
    ],
    [
      { frontendDomainName: 'https://looker.example.com' },
      'frontendDomainName "https://looker.example.com" is not a DNS name: give the gateway\'s host name, for example "looker.example.com".',
    ],
    [{ backendClientValidityDays: 1 }, 'backendClientValidityDays is 1: use a whole number of days from 2 to 397.'],
    [
      { backendClientValidityDays: 60, backendCaValidityDays: 45 },
      'backendClientValidityDays (60) must be shorter than backendCaValidityDays (45): a client certificate cannot outlive its CA.',
    ],
    [{ backendClientCommonName: 'a,b' }, 'backendClientCommonName "a,b" is invalid: use 1 to 64 letters, digits, spaces and . : _ -.'],
  ] as const)('rejects %j with the bad value and the fix', (bad, message) => {
    expect(() => rotationEnvironment({ ...SETTINGS, ...(bad as Partial<RotationSettings>) })).toThrow(message);
  });

  test('reading names the variable that is missing or malformed', () => {
    const env = rotationEnvironment(SETTINGS);
    expect(() => readRotationSettings({ ...env, [ROTATION_ENV.backendCaSecretArn]: undefined })).toThrow(
      'Environment variable LG_BACKEND_CA_SECRET_ARN is not set: the rotation construct sets it (see core/rotation-contract.ts).',
    );
    expect(() => readRotationSettings({ ...env, [ROTATION_ENV.frontendValidityDays]: 'ninety' })).toThrow(
      'Environment variable LG_FRONTEND_VALIDITY_DAYS="ninety" is not a whole number of days.',
    );
  });

  test('the default schedules rotate each certificate at most halfway through its validity', () => {
    expect(
      certificateScheduleProblem(
        'backend client certificate',
        ROTATION_DEFAULTS.backendClientValidityDays,
        ROTATION_SCHEDULE_DEFAULTS_DAYS.backendClientCertificate,
      ),
    ).toBeUndefined();
    expect(
      certificateScheduleProblem('frontend certificate', ROTATION_DEFAULTS.frontendValidityDays, ROTATION_SCHEDULE_DEFAULTS_DAYS.frontendCertificate),
    ).toBeUndefined();
    expect(certificateScheduleProblem('backend client certificate', 14, 10)).toBe(
      'backend client certificate rotates every 10 days but each certificate is valid for 14 days: rotate at most every 7 days (half the validity), or make the certificates valid for at least 20 days.',
    );
  });
});
