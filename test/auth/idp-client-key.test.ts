/**
 * The private_key_jwt key secret as operators store it (docs/idps.md): any unencrypted PEM
 * private key is kept as PKCS#8 (what jose's importPKCS8 signs with); anything else is
 * refused with an error that says what to store and never echoes the value.
 */
import { generateKeyPairSync } from 'node:crypto';
import { importPKCS8 } from 'jose';
import { parseClientKey } from '../../lambda/auth/idp-credentials';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });

test.each([
  ['PKCS#8 RSA', rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'RS256'],
  ['PKCS#1 RSA (openssl genrsa, older tools)', rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(), 'RS256'],
  ['SEC1 EC (openssl ecparam -genkey)', ec.privateKey.export({ type: 'sec1', format: 'pem' }).toString(), 'ES256'],
])('%s is accepted and kept as PKCS#8 that jose can sign with', async (_, pem, alg) => {
  const key = parseClientKey(JSON.stringify({ privateKeyPem: pem, alg }));
  expect(key.privateKeyPem).toMatch(/^-{5}BEGIN PRIVATE KEY-{5}\n/);
  await expect(importPKCS8(key.privateKeyPem, alg)).resolves.toBeDefined();
});

test.each([
  ['not JSON', 'privateKeyPem=abc', /not JSON/],
  ['no key', JSON.stringify({ alg: 'RS256' }), /no "privateKeyPem" string/],
  [
    'a public key',
    JSON.stringify({ privateKeyPem: rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString() }),
    /not an unencrypted private key in PEM/,
  ],
  ['garbage with a secret-looking value', JSON.stringify({ privateKeyPem: 'hunter2-do-not-log' }), /not an unencrypted private key in PEM/],
])('%s is refused with what to store', (_, secret, message) => {
  let error: Error | undefined;
  try {
    parseClientKey(secret);
  } catch (e) {
    error = e as Error;
  }
  expect(error?.message).toMatch(message);
  expect(error?.message).not.toContain('hunter2');
});
