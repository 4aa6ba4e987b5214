import { KEY_SYNC_DEFAULTS } from '../../lib/fleet/key-sync';
import { parseAuthServiceEnvironment } from '../../lib/auth/environment';
import { DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_SESSION_TTL_SECONDS } from '../../lib/session-contract';
import { worstCaseRotationGapSeconds } from '../../lib/keys/rotation-window';
import {
  certificateScheduleProblem,
  DEFAULT_SIGNING_KEY_TIMING,
  minimumSigningKeyIntervalSeconds,
  signingScheduleProblem,
  readRotationSettings,
  ROTATION_DEFAULTS,
  ROTATION_ENV,
  ROTATION_SCHEDULE_DEFAULTS_DAYS,
  rotationEnvironment,
  RotationSettings,
} from '../../lib/keys/rotation-contract';

/** The variables the auth service requires; everything else at its default. */
const MINIMAL_AUTH_ENV = {
  LG_IDP_ISSUER: 'https://idp.example.com',
  LG_IDP_CLIENT_ID: 'gateway',
  LG_IDP_CLIENT_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:idp-AbCdEf',
  LG_PUBLIC_BASE_URL: 'https://looker.example.com',
  LG_SESSION_ISSUER: 'https://looker.example.com',
  LG_SESSION_AUDIENCE: 'https://looker.example.com',
  LG_MAPPING_RULES: JSON.stringify({ rules: [{ name: 'all', match: { groups: ['*'] }, grant: { roles: ['Viewer'] } }] }),
  LG_SIGNING_KEYS_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:signing-AbCdEf',
  LG_COOKIE_KEYS_SECRET_ARN: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:cookie-AbCdEf',
};

const SETTINGS: RotationSettings = {
  verificationKeysSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lg/session-verification-keys-AbCdEf',
  backendCaSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lg/backend-ca-AbCdEf',
  frontendDomainName: 'looker.example.com',
};

describe('the rotation contract', () => {
  test('the environment the construct sets reads back as the same settings, defaults filled in', () => {
    const env = rotationEnvironment(SETTINGS);
    expect(env[ROTATION_ENV.sessionAlgorithm]).toBe('ES256');
    expect(readRotationSettings(env)).toEqual({ ...ROTATION_DEFAULTS, ...SETTINGS, rotatedSecretArns: [], signingKeyMinAgeSeconds: 1290 });
    const arns = [SETTINGS.verificationKeysSecretArn, SETTINGS.backendCaSecretArn];
    expect(readRotationSettings(rotationEnvironment({ ...SETTINGS, rotatedSecretArns: arns, signingKeyMinAgeSeconds: 0 }))).toMatchObject({ rotatedSecretArns: arns, signingKeyMinAgeSeconds: 0 });
  });

  test('CloudFormation tokens are accepted where ARNs and names are expected', () => {
    expect(() => rotationEnvironment({ ...SETTINGS, verificationKeysSecretArn: '${Token[TOKEN.123]}', frontendDomainName: '${Token[TOKEN.7]}' })).not.toThrow();
  });

  test.each([
    [{ sessionAlgorithm: 'HS256' }, 'sessionAlgorithm "HS256" is not supported: use one of ES256, RS256.'],
    [{ backendCaSecretArn: 'backend-ca' }, 'backendCaSecretArn "backend-ca" is not a Secrets Manager secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>).'],
    [{ frontendDomainName: 'https://looker.example.com' }, 'frontendDomainName "https://looker.example.com" is not a DNS name: give the gateway\'s host name, for example "looker.example.com".'],
    [{ backendClientValidityDays: 1 }, 'backendClientValidityDays is 1: use a whole number of days from 2 to 397.'],
    [{ backendClientValidityDays: 60, backendCaValidityDays: 45 }, 'backendClientValidityDays (60) must be shorter than backendCaValidityDays (45): a client certificate cannot outlive its CA.'],
    [{ backendClientCommonName: 'a,b' }, 'backendClientCommonName "a,b" is invalid: use 1 to 64 letters, digits, spaces and . : _ -.'],
  ] as const)('rejects %j with the bad value and the fix', (bad, message) => {
    expect(() => rotationEnvironment({ ...SETTINGS, ...(bad as Partial<RotationSettings>) })).toThrow(message);
  });

  test('reading names the variable that is missing or malformed', () => {
    const env = rotationEnvironment(SETTINGS);
    expect(() => readRotationSettings({ ...env, [ROTATION_ENV.backendCaSecretArn]: undefined })).toThrow(
      'Environment variable LG_BACKEND_CA_SECRET_ARN is not set: the rotation construct sets it (see lib/keys/rotation-contract.ts).',
    );
    expect(() => readRotationSettings({ ...env, [ROTATION_ENV.frontendValidityDays]: 'ninety' })).toThrow('Environment variable LG_FRONTEND_VALIDITY_DAYS="ninety" is not a whole number of days.');
  });

  test('the default schedules rotate each certificate at most halfway through its validity', () => {
    expect(certificateScheduleProblem('backend client certificate', ROTATION_DEFAULTS.backendClientValidityDays, ROTATION_SCHEDULE_DEFAULTS_DAYS.backendClientCertificate)).toBeUndefined();
    expect(certificateScheduleProblem('frontend certificate', ROTATION_DEFAULTS.frontendValidityDays, ROTATION_SCHEDULE_DEFAULTS_DAYS.frontendCertificate)).toBeUndefined();
    expect(certificateScheduleProblem('backend client certificate', 14, 10)).toBe(
      'backend client certificate rotates every 10 days but each certificate is valid for 14 days: rotate at most every 7 days (half the validity), or make the certificates valid for at least 20 days.',
    );
  });

  test('the default timing is the one of the parts that own each number', () => {
    expect(DEFAULT_SIGNING_KEY_TIMING).toEqual({
      keySyncIntervalSeconds: KEY_SYNC_DEFAULTS.intervalSeconds,
      keySyncRandomDelaySeconds: KEY_SYNC_DEFAULTS.randomDelaySeconds,
      sessionLifetimeSeconds: DEFAULT_SESSION_TTL_SECONDS,
      clockSkewSeconds: DEFAULT_CLOCK_SKEW_SECONDS,
      secretsCacheSeconds: parseAuthServiceEnvironment(MINIMAL_AUTH_ENV).secretsCacheSeconds,
    });
    // 300 + 60 (every instance fetched it) + 600 + 30 + 300 (every session it signed expired): 21.5 minutes.
    expect(minimumSigningKeyIntervalSeconds(DEFAULT_SIGNING_KEY_TIMING)).toBe(1290);
  });

  test.each([
    ['rate(7 days)', undefined, 6 * 86400],
    ['rate(2 days)', undefined, 86400],
    ['rate(1 day)', undefined, 0],
    ['rate(12 hours)', undefined, 11 * 3600],
    ['rate(7 days)', '3h', 7 * 86400 - 3 * 3600],
    ['cron(0 3 ? * MON *)', '2h', 7 * 86400 - 2 * 3600],
    ['cron(0 3 ? * MON,TUE *)', '2h', 86400 - 2 * 3600],
    ['cron(0 */6 * * ? *)', undefined, 5 * 3600],
  ] as const)('the shortest gap between two scheduled rotations of %s (window %s) is %d s', (expression, window, gap) => {
    expect(worstCaseRotationGapSeconds(expression, window)).toBe(gap);
  });

  test('the timing check refuses a schedule whose rotations can land closer than a key needs, with the numbers and the fix', () => {
    expect(signingScheduleProblem('signingKeyRotation', 'rate(7 days)', undefined, DEFAULT_SIGNING_KEY_TIMING)).toBeUndefined();
    expect(signingScheduleProblem('signingKeyRotation', 'rate(2 days)', undefined, DEFAULT_SIGNING_KEY_TIMING)).toBeUndefined();
    expect(signingScheduleProblem('signingKeyRotationSchedule', 'cron(0 3 ? * MON *)', '2h', DEFAULT_SIGNING_KEY_TIMING)).toBeUndefined();
    expect(signingScheduleProblem('signingKeyRotation', 'rate(1 day)', undefined, DEFAULT_SIGNING_KEY_TIMING)).toBe(
      'signingKeyRotation "rate(1 day)" lets two rotations land 0 min apart (one at the end of its window (the default: the rest of the UTC day for daily schedules, one hour for hourly ones), the next at the start of the following one), ' +
        'but a signing key needs 22 min between rotations: key-sync interval 300 s + random delay 60 s (every instance has the key before it signs) + session lifetime 600 s + clock skew 30 s + auth service key cache 300 s ' +
        '(every session it signed has expired before it is dropped). Rotate less often (for example every 7 days), or give an explicit window whose end leaves that much time before the next window starts ' +
        '(for example signingKeyRotationSchedule "cron(0 3 ? * MON *)" with signingKeyRotationWindow Duration.hours(2)).',
    );
    // Longer sessions need more room: 4-hourly windows of 3 hours leave 1 hour, less than the 71.5 minutes that 1-hour sessions need.
    expect(signingScheduleProblem('signingKeyRotationSchedule', 'cron(0 0/4 * * ? *)', '3h', { ...DEFAULT_SIGNING_KEY_TIMING, sessionLifetimeSeconds: 3600 })).toMatch(/lets two rotations land 60 min apart .* needs 72 min/);
  });

  test.each([
    ['rate(2 hours)', undefined, 'rotates more often than Secrets Manager allows: at most every 4 hours'],
    ['every week', undefined, 'is neither rate(...) nor cron(...)'],
    ['cron(0 3 * * MON *)', undefined, 'exactly one of day-of-month and day-of-week must be "?"'],
    ['cron(0 3 L * ? *)', undefined, 'uses L, W or #'],
    ['cron(0 23 ? * MON *)', '2h', 'runs past the end of the UTC day'],
    ['cron(0 0/4 * * ? *)', '5h', 'runs into the next window'],
    ['cron(0 3 ? * MON *)', '90m', 'is not a number of hours from 1h to 24h'],
  ] as const)('the schedule %s (window %s) is refused: %s', (expression, window, message) => {
    expect(signingScheduleProblem('signingKeyRotationSchedule', expression, window, DEFAULT_SIGNING_KEY_TIMING)).toContain(message);
  });
});
