import { createPublicKey, generateKeyPairSync, verify, sign } from 'node:crypto';
import { publicKeyPemFromJwk, renderKidMap, renderSessionKeyFiles } from '../../core/haproxy';
import type { StoredJwk, VerificationKeyEntry } from '../../core/key-material';

function ecJwk(kid: string): { jwk: StoredJwk; privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'] } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { jwk: { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid, kty: 'EC' }, privateKey };
}

test('publicKeyPemFromJwk gives an SPKI PEM that verifies signatures of the pair (EC and RSA)', () => {
  const { jwk, privateKey } = ecJwk('k1');
  const pem = publicKeyPemFromJwk(jwk);
  expect(pem).toMatch(/^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
  expect(verify('sha256', Buffer.from('x'), createPublicKey(pem), sign('sha256', Buffer.from('x'), privateKey))).toBe(true);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaJwk = { ...(rsa.privateKey.export({ format: 'jwk' }) as Record<string, string>), kty: 'RSA', kid: 'r1' } as StoredJwk;
  // The private members are dropped: only the public half is ever written.
  expect(createPublicKey(publicKeyPemFromJwk(rsaJwk)).export({ format: 'jwk' })).toEqual(rsa.publicKey.export({ format: 'jwk' }));
});

test('publicKeyPemFromJwk names the kid when the JWK is unusable', () => {
  expect(() => publicKeyPemFromJwk({ kty: 'EC', kid: 'broken', crv: 'P-256', x: 'AA' })).toThrow(
    /^Cannot turn the JWK with kid "broken" \(kty "EC"\) into a PEM public key/,
  );
});

test('renderKidMap points each kid at its slot file, in slot order', () => {
  expect(
    renderKidMap(
      [
        { kid: 'n', slot: 'next' },
        { kid: 'c', slot: 'current' },
        { kid: 'p', slot: 'previous' },
      ],
      '/etc/haproxy/gateway',
    ),
  ).toBe('p /etc/haproxy/gateway/keys/session-previous.pem\nc /etc/haproxy/gateway/keys/session-current.pem\nn /etc/haproxy/gateway/keys/session-next.pem\n');
});

test('a slot without a key holds a copy of the current key and has no kid map line', () => {
  const current = ecJwk('cur');
  const keys: VerificationKeyEntry[] = [{ kid: 'cur', status: 'current', publicJwk: current.jwk, publicKeyPem: '' }];
  const files = Object.fromEntries(renderSessionKeyFiles(keys, '/gw').files.map((f) => [f.path, f.content]));
  const pem = publicKeyPemFromJwk(current.jwk);
  expect(files['keys/session-previous.pem']).toBe(pem);
  expect(files['keys/session-current.pem']).toBe(pem);
  expect(files['keys/session-next.pem']).toBe(pem);
  expect(files['maps/session-kids.map']).toBe('cur /gw/keys/session-current.pem\n');
  expect(() => renderSessionKeyFiles([], '/gw')).toThrow(
    'The verification key set has no "current" key: nothing could verify sessions. Rotate the signing keys first.',
  );
});
