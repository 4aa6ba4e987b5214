/**
 * The development IdP answering as one IdP does (dev/stand-ins/idp/dev-idp-quirks.mjs), with
 * openid-client 6 as the relying party (the library the auth service uses) and the
 * HTTP-level login of the auth-service harness (its form, cookies and redirects).
 */
import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { exportJWK } from 'jose';
import * as client from 'openid-client';
import { fetchTrustingCa } from '../../../dev/auth-local-server';
import type { DevIdpQuirks } from '../../../dev/stand-ins/idp/dev-idp';
import { CookieJar, idpLogin, request, startTestIdp, submitIdpLogoutForm, type HttpAnswer } from '../../auth/support/harness';
import { createCa, type TestCa } from '../../../dev/pki';

export const CLIENT_ID = 'looker-gateway';
export const CLIENT_SECRET = 'quirky-client-secret';
/** Never served: the login stops at the redirect back to it (the harness's idpLogin stops at /oauth2/callback). */
export const REDIRECT_URI = 'https://gateway.invalid/oauth2/callback';
export const POST_LOGOUT_URI = 'https://gateway.invalid/oauth2/logout?signed_out=1';

export type Users = Record<string, Record<string, unknown>>;

export interface ClientCertificate {
  readonly privateKey: CryptoKey;
  /** The public JWK as registered at the IdP, with x5c and x5t#S256 (Entra certificate credentials). */
  readonly publicJwk: Record<string, unknown>;
  readonly thumbprintS256: string;
}

export interface LoginResult {
  readonly tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
  readonly jar: CookieJar;
}

export interface QuirkyIdp {
  /** The issuer (with the tenant path for Entra). */
  readonly issuer: string;
  /** `https://127.0.0.1:<port>` */
  readonly origin: string;
  readonly ca: TestCa;
  readonly fetch: client.CustomFetch;
  /** A relying party configuration (discovery against the IdP's issuer) with the given client authentication. */
  configuration(auth?: client.ClientAuth): Promise<client.Configuration>;
  /** Runs the authorization request through the IdP's login form; resolves to the redirect back to the client. */
  authorize(config: client.Configuration, options: { user: string; scope: string; params?: Record<string, string>; jar?: CookieJar }): Promise<Authorization>;
  /** authorize + authorizationCodeGrant. */
  login(config: client.Configuration, options: { user: string; scope: string; params?: Record<string, string>; jar?: CookieJar }): Promise<LoginResult>;
  /** GET (no redirects followed) with the jar's cookies. */
  get(url: string, jar: CookieJar): Promise<HttpAnswer>;
  /** Posts the IdP's logout confirmation form (what its page's script, or the user, submits). */
  submitLogoutForm(page: HttpAnswer, pageUrl: string, jar: CookieJar): Promise<HttpAnswer>;
  /** The IdP accepts only this client secret from now on. */
  rotateClientSecret(secret: string): Promise<void>;
  stop(): Promise<void>;
}

export interface Authorization {
  readonly callbackUrl: URL;
  readonly verifier: string;
  readonly state: string;
  readonly nonce: string;
}

/** Starts the dev IdP with `quirks` and the given users (password: testPassword(user)). */
export async function startQuirkyIdp(options: { quirks: DevIdpQuirks; users: Users; postLogoutRedirectUris?: string[] }): Promise<QuirkyIdp> {
  const ca = await createCa();
  const fetchFn = await fetchTrustingCa(ca.cert);
  const idp = await startTestIdp({
    ca,
    users: options.users,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUris: [REDIRECT_URI],
    postLogoutRedirectUris: options.postLogoutRedirectUris ?? [POST_LOGOUT_URI],
    fetch: fetchFn,
    quirks: options.quirks,
  });

  const configuration = async (auth: client.ClientAuth = client.ClientSecretBasic(CLIENT_SECRET)) => {
    const config = await client.discovery(new URL(idp.issuer), CLIENT_ID, {}, auth, { [client.customFetch]: fetchFn });
    config[client.customFetch] = fetchFn;
    return config;
  };

  const authorize: QuirkyIdp['authorize'] = async (config, { user, scope, params = {}, jar = new CookieJar() }) => {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...params,
    });
    const callback = await idpLogin(fetchFn, jar, url.href, user);
    return { callbackUrl: new URL(callback), verifier, state, nonce };
  };

  return {
    issuer: idp.issuer,
    origin: idp.origin,
    ca,
    fetch: fetchFn,
    configuration,
    authorize,
    login: async (config, options) => {
      const jar = options.jar ?? new CookieJar();
      const { callbackUrl, verifier, state, nonce } = await authorize(config, { ...options, jar });
      const tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      return { tokens, jar };
    },
    get: (url, jar) => request(fetchFn, jar, url),
    submitLogoutForm: (page, pageUrl, jar) => submitIdpLogoutForm(fetchFn, jar, page, pageUrl),
    rotateClientSecret: (secret) => idp.rotateClientSecret(secret),
    stop: () => idp.stop(),
  };
}

/** An RSA key and a self-signed certificate for it, registered as the client's JWK (Entra certificate credentials). */
export async function createClientCertificate(): Promise<ClientCertificate> {
  const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=looker-gateway',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: algorithm,
  });
  const der = Buffer.from(certificate.rawData);
  const thumbprintS256 = createHash('sha256').update(der).digest('base64url');
  const publicJwk = { ...(await exportJWK(keys.publicKey)), alg: 'RS256', use: 'sig', x5c: [der.toString('base64')], 'x5t#S256': thumbprintS256 };
  return { privateKey: keys.privateKey, publicJwk, thumbprintS256 };
}

/** The payload of a JWT, unverified (for asserting what the IdP put in a token the client already validated). */
export function jwtPayload(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>;
}
