/**
 * Groups that are not in the ID token, read where the IdP keeps them:
 *   - Microsoft Graph, when Entra ID reports a groups overage (over 200 groups the ID token
 *     carries `_claim_names`/`_claim_sources` instead): `POST <graph>/v1.0/users/<oid>/getMemberGroups`
 *     with an app-only token from the IdP's token endpoint (client credentials, scope
 *     `<graph>/.default`; application permissions User.Read.All and GroupMember.Read.All).
 *     https://learn.microsoft.com/graph/api/directoryobject-getmembergroups
 *     The URL in `_claim_sources` (the retired Azure AD Graph) is never called: only the
 *     configured Graph base URL is.
 *   - the Google Workspace Directory API (Google's tokens never carry groups): a service
 *     account with domain-wide delegation signs a JWT bearer assertion (RFC 7523) acting as
 *     an administrator, then `GET <directory>/groups?userKey=<e-mail>` page by page.
 *     https://developers.google.com/identity/protocols/oauth2/service-account#httprest
 *     https://developers.google.com/admin-sdk/directory/reference/rest/v1/groups/list
 * Every call is bounded by the IdP timeout; any failure is a GroupSourceError that the
 * service turns into a deny (`groups-source-failed`): groups are never guessed.
 */
import { importPKCS8, SignJWT } from 'jose';
import { CachedSecret, type SecretSource } from '../shared/secrets';

/** A group source failed; the message says which call and how, never a token. */
export class GroupSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GroupSourceError';
  }
}

export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;

export interface GroupSource {
  /** Stable name, kept with cached results (`microsoft-graph`, `google-directory`). */
  readonly name: string;
  /** The user's groups as the rules match them. */
  groupsOf(claims: Readonly<Record<string, unknown>>): Promise<string[]>;
}

/** An access token with its expiry (epoch ms), reused until a minute before it. */
interface CachedToken {
  readonly token: string;
  readonly expiresAtMs: number;
}

const TOKEN_REUSE_MARGIN_MS = 60_000;
/** Most pages read for one user (Directory API: 200 groups a page). */
const MAX_PAGES = 50;

async function callJson(fetchFn: FetchLike, what: string, url: string, init: RequestInit, timeoutMs: number): Promise<Record<string, unknown>> {
  let answer: Response;
  try {
    answer = await fetchFn(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const name = (error as Error)?.name;
    throw new GroupSourceError(`${what}: ${name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${timeoutMs} ms` : 'unreachable'}`);
  }
  const text = await answer.text().catch(() => '');
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    throw new GroupSourceError(`${what}: HTTP ${answer.status} with a body that is not JSON`);
  }
  if (answer.status !== 200) {
    const error = body.error as Record<string, unknown> | string | undefined;
    const code = typeof error === 'string' ? error : typeof error?.code === 'string' || typeof error?.code === 'number' ? String(error.code) : undefined;
    const message = typeof error === 'object' && typeof error?.message === 'string' ? error.message.slice(0, 200) : undefined;
    throw new GroupSourceError(`${what}: HTTP ${answer.status}${code ? ` ${code}` : ''}${message ? ` (${message})` : ''}`);
  }
  return body;
}

/** The client-credentials grant at the IdP, for an app-only token (lambda/auth/oidc.ts). */
export interface AppTokenIssuer {
  clientCredentials(scope: string): Promise<{ accessToken: string; expiresInSeconds?: number }>;
}

export interface MicrosoftGraphOptions {
  /** `https://graph.microsoft.com` (or a national cloud's). */
  readonly baseUrl: string;
  readonly tokens: AppTokenIssuer;
  readonly fetch: FetchLike;
  readonly timeoutMs: number;
  readonly now: () => number;
}

export class MicrosoftGraphGroups implements GroupSource {
  readonly name = 'microsoft-graph';
  private token?: CachedToken;

  constructor(private readonly options: MicrosoftGraphOptions) {}

  private async appToken(): Promise<string> {
    if (this.token && this.token.expiresAtMs - TOKEN_REUSE_MARGIN_MS > this.options.now()) return this.token.token;
    const issued = await this.options.tokens.clientCredentials(`${this.options.baseUrl}/.default`).catch((error: unknown) => {
      throw new GroupSourceError(`Microsoft Graph app-only token: ${(error as Error).message}`);
    });
    this.token = { token: issued.accessToken, expiresAtMs: this.options.now() + (issued.expiresInSeconds ?? 300) * 1000 };
    return issued.accessToken;
  }

  async groupsOf(claims: Readonly<Record<string, unknown>>): Promise<string[]> {
    const oid = claims.oid;
    if (typeof oid !== 'string' || !/^[0-9a-fA-F-]{36}$/.test(oid)) throw new GroupSourceError('Microsoft Graph: the ID token has no oid (the user object id) to ask for');
    const token = await this.appToken();
    const body = await callJson(
      this.options.fetch,
      'Microsoft Graph getMemberGroups',
      `${this.options.baseUrl}/v1.0/users/${encodeURIComponent(oid)}/getMemberGroups`,
      { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify({ securityEnabledOnly: false }) },
      this.options.timeoutMs,
    );
    if (!Array.isArray(body.value) || body.value.some((id) => typeof id !== 'string')) throw new GroupSourceError('Microsoft Graph getMemberGroups: the answer has no list of group ids');
    return body.value as string[];
  }
}

/** The fields of a Google service account key file the gateway uses. */
export interface GoogleServiceAccountKey {
  readonly clientEmail: string;
  readonly privateKeyPem: string;
  readonly tokenUri: string;
}

/** A Google service account key file (JSON, as the Cloud console downloads it). */
export function parseGoogleServiceAccountKey(secretString: string): GoogleServiceAccountKey {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(secretString) as Record<string, unknown>;
  } catch {
    throw new Error('The Google service account secret is not JSON: store the key file as downloaded from the Cloud console.');
  }
  const { client_email: clientEmail, private_key: privateKeyPem, token_uri: tokenUri } = value;
  if (typeof clientEmail !== 'string' || typeof privateKeyPem !== 'string' || !privateKeyPem.includes('PRIVATE KEY')) {
    throw new Error('The Google service account secret lacks "client_email" or "private_key": store the whole key file.');
  }
  return { clientEmail, privateKeyPem, tokenUri: typeof tokenUri === 'string' ? tokenUri : 'https://oauth2.googleapis.com/token' };
}

export const DIRECTORY_GROUP_SCOPE = 'https://www.googleapis.com/auth/admin.directory.group.readonly';

export interface GoogleDirectoryOptions {
  readonly secretSource: SecretSource;
  readonly serviceAccountSecretId: string;
  /** The Workspace administrator the service account acts as. */
  readonly adminEmail: string;
  /** `https://admin.googleapis.com/admin/directory/v1`. */
  readonly directoryUrl: string;
  readonly fetch: FetchLike;
  readonly timeoutMs: number;
  readonly now: () => number;
  readonly keyCacheMs: number;
  readonly rereadIntervalMs: number;
}

export class GoogleDirectoryGroups implements GroupSource {
  readonly name = 'google-directory';
  private readonly key: CachedSecret<GoogleServiceAccountKey>;
  private token?: CachedToken & { readonly keyEmail: string };

  constructor(private readonly options: GoogleDirectoryOptions) {
    this.key = new CachedSecret(options.secretSource, options.serviceAccountSecretId, parseGoogleServiceAccountKey, { maxAgeMs: options.keyCacheMs, rereadIntervalMs: options.rereadIntervalMs, now: options.now });
  }

  private async accessToken(): Promise<string> {
    const key = await this.key.get();
    if (this.token && this.token.keyEmail === key.clientEmail && this.token.expiresAtMs - TOKEN_REUSE_MARGIN_MS > this.options.now()) return this.token.token;
    const now = Math.floor(this.options.now() / 1000);
    let assertion: string;
    try {
      assertion = await new SignJWT({ scope: DIRECTORY_GROUP_SCOPE })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
        .setIssuer(key.clientEmail)
        .setSubject(this.options.adminEmail)
        .setAudience(key.tokenUri)
        .setIssuedAt(now)
        .setExpirationTime(now + 3600)
        .sign(await importPKCS8(key.privateKeyPem, 'RS256'));
    } catch {
      throw new GroupSourceError('Google service account: the private key in the secret cannot sign (not an RSA PKCS#8 key)');
    }
    const body = await callJson(
      this.options.fetch,
      'Google service account token',
      key.tokenUri,
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }).toString(),
      },
      this.options.timeoutMs,
    );
    if (typeof body.access_token !== 'string') throw new GroupSourceError('Google service account token: the answer has no access_token');
    const lifetime = typeof body.expires_in === 'number' ? body.expires_in : 3600;
    this.token = { token: body.access_token, expiresAtMs: this.options.now() + lifetime * 1000, keyEmail: key.clientEmail };
    return body.access_token;
  }

  async groupsOf(claims: Readonly<Record<string, unknown>>): Promise<string[]> {
    const email = claims.email;
    if (typeof email !== 'string' || !email.includes('@')) throw new GroupSourceError('Google Directory: the ID token has no e-mail address to ask for');
    const token = await this.accessToken();
    const groups: string[] = [];
    let pageToken: string | undefined;
    for (let page = 0; page < MAX_PAGES; page += 1) {
      const query = new URLSearchParams({ userKey: email, maxResults: '200', ...(pageToken ? { pageToken } : {}) });
      const body = await callJson(this.options.fetch, 'Google Directory groups.list', `${this.options.directoryUrl}/groups?${query}`, { method: 'GET', headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }, this.options.timeoutMs);
      for (const group of Array.isArray(body.groups) ? body.groups : []) {
        // Rules match the group's e-mail address, the id an administrator sees and types.
        if (group && typeof (group as { email?: unknown }).email === 'string') groups.push((group as { email: string }).email.toLowerCase());
      }
      pageToken = typeof body.nextPageToken === 'string' ? body.nextPageToken : undefined;
      if (!pageToken) return groups;
    }
    throw new GroupSourceError(`Google Directory groups.list: more than ${MAX_PAGES * 200} groups`);
  }
}
