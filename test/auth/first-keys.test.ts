/**
 * A first deployment: the auth function can be called before its key sets hold keys,
 * because RotateSecret only starts the first rotations (API_RotateSecret: "starts the
 * asynchronous process"). The service waits for the real keys, bounded, with one log line
 * when the wait starts and one when it ends, and never keeps a seed in its cache: the
 * first request after the rotation finished gets the keys.
 *
 * Real parts: the rotation handler writes the key sets in the Secrets Manager model, the
 * service reads them through its SDK client (SecretsManagerSource), as in Lambda.
 */
import { SECRET_KINDS, seedSecretValue } from '../../core/key-material';
import { handler as rotationHandler } from '../../lambda/rotation/index';
import { createAuthService } from '../../lambda/auth/service';
import { SecretsManagerSource } from '../../lambda/shared/secrets';
import { rotateAndWait, RotationWorld, startRotationWorld } from '../rotation/fixture';
import { apiGatewayGetEvent } from '../../dev/aws/api-gateway-event';

let world: RotationWorld;
let logs: Record<string, unknown>[];

beforeEach(() => {
  world = startRotationWorld(rotationHandler);
  logs = [];
});
afterEach(() => world.stop());

function service(waitSeconds: string) {
  return createAuthService(
    {
      LG_IDP_ISSUER: 'https://idp.example.com',
      LG_IDP_CLIENT_ID: 'gateway',
      LG_IDP_CLIENT_SECRET_ARN: 'lg/idp-client-secret',
      LG_PUBLIC_BASE_URL: 'https://looker.example.com',
      LG_SESSION_ISSUER: 'https://looker.example.com',
      LG_SESSION_AUDIENCE: 'https://looker.example.com',
      LG_MAPPING_RULES: JSON.stringify({ rules: [{ name: 'all', match: { groups: ['*'] }, grant: { roles: ['Viewer'] } }] }),
      LG_SIGNING_KEYS_SECRET_ARN: world.arns.signingKeys,
      LG_COOKIE_KEYS_SECRET_ARN: world.arns.cookieKeys,
      LG_FIRST_KEYS_WAIT_SECONDS: waitSeconds,
    },
    { secretSource: new SecretsManagerSource(), logSink: { write: (line) => void logs.push(JSON.parse(line) as Record<string, unknown>) } },
  );
}

const waitLines = () => logs.filter((l) => l.event === 'first-keys').map((l) => `${l.level}: ${l.message}`);

test('a request that arrives while the first rotation runs waits for it and gets the real keys', async () => {
  const { model, arns } = world;
  const release = model.holdRotations();
  const started = await model.rotateSecret({ SecretId: arns.signingKeys });
  expect(model.valueAt(arns.signingKeys)).toBe(seedSecretValue(SECRET_KINDS.signingKeys));

  const answer = service('8').handle(apiGatewayGetEvent('/oauth2/jwks.json'));
  // The rotation function runs 1.5 s later (a cold start, a slow first rotation).
  setTimeout(release, 1500);
  const jwks = await answer;
  await model.settled();

  expect(jwks.statusCode).toBe(200);
  expect(JSON.parse(jwks.body).keys.map((k: { kid: string }) => k.kid)).toHaveLength(2);
  expect(model.rotationOutcome(started.VersionId!)).toEqual({ succeeded: true });
  expect(waitLines()).toEqual([
    `info: Secret ${arns.signingKeys} holds no keys yet (its first rotation has not finished): waiting up to 8000 ms.`,
    expect.stringMatching(new RegExp(`^info: Secret ${arns.signingKeys} has its first keys after waiting [123]000 ms\\.$`)),
  ]);
});

test('the wait is bounded: without keys the request gets 503 keys_not_ready, and a seed is not cached for the next request', async () => {
  const { model, arns } = world;
  const auth = service('2');
  const first = await auth.handle(apiGatewayGetEvent('/oauth2/jwks.json'));
  expect(first.statusCode).toBe(503);
  expect(JSON.parse(first.body)).toMatchObject({ reason: 'keys-not-ready' });
  expect(waitLines().at(-1)).toBe(`warn: Secret ${arns.signingKeys} still holds no keys after waiting 2000 ms: answering that the keys are not ready.`);

  // The rotation finishes; the very next request (well within the 300 s cache) has the keys without waiting.
  expect(await rotateAndWait(model, arns.signingKeys)).toMatchObject({ succeeded: true });
  const linesBefore = waitLines().length;
  const second = await auth.handle(apiGatewayGetEvent('/oauth2/jwks.json'));
  expect(second.statusCode).toBe(200);
  expect(waitLines()).toHaveLength(linesBefore);
});
