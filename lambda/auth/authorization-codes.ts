/**
 * The broker's authorization codes: issued at authorize, redeemed once at the token
 * endpoint, by whichever container of the function gets each request. One interface, two
 * stores: the revocation table in AWS (a third item type next to revocations and session
 * records), this process's memory for `npm run local`.
 *
 * Layout in the table (core/auth/revocation-table.ts): `pk = "code#<key>", sk = "code"`, the
 * key being the SHA-256 of the code (authorizationCodeKey), so the table never holds a code
 * that could be redeemed; `grant` (S, JSON: what the code was issued for), `expiresAt` (N,
 * TTL) and, once redeemed, `redeemedAt` (N). Redemption is a consistent read followed by a
 * write conditioned on `attribute_not_exists(redeemedAt)`: of two containers redeeming one
 * code at once exactly one write succeeds, the other sees the condition fail (a replay).
 * DynamoDB's TTL deletes lazily ("Items that have expired and not been deleted will still
 * show up in reads", developer guide, "Time to Live"), so expiry is checked on every read.
 */
import { GetItemCommand, PutItemCommand, type AttributeValue, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { REVOCATION_TABLE } from '../../core/auth/revocation-table';
import { dynamoCallOptions, isConditionFailed } from './revocations';

/** What an authorization code was issued for (authorize), checked again at the token endpoint. */
export interface AuthorizationCodeGrant {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly scope: string;
  readonly nonce?: string;
  readonly codeChallenge?: string;
  readonly codeChallengeMethod?: 'S256' | 'plain';
  /** The gateway session the code was issued from (a logout since then refuses the code). */
  readonly sessionId: string;
  /** The claims Looker receives (lookerUserClaims): in the ID token and from userinfo. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export type CodeRedemption =
  | { readonly kind: 'redeemed'; readonly grant: AuthorizationCodeGrant }
  /** Redeemed before: RFC 6749 4.1.2 says a second use must be refused. */
  | { readonly kind: 'replayed'; readonly grant: AuthorizationCodeGrant }
  | { readonly kind: 'expired' }
  | { readonly kind: 'unknown' };

/** The store could not be read or written; the message names the operation, never a code. */
export class AuthorizationCodeStoreError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`The authorization code store failed to ${operation}: ${(cause as Error)?.name ?? 'Error'}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'AuthorizationCodeStoreError';
  }
}

export interface AuthorizationCodeStore {
  /** Keeps a new code (by its key) until `expiresAt`, epoch seconds. */
  issue(key: string, grant: AuthorizationCodeGrant, expiresAt: number): Promise<void>;
  /** Redeems a code once: only the first call for a key gets `redeemed`. */
  redeem(key: string, now: number): Promise<CodeRedemption>;
}

/** Codes of this process only: `npm run local` and single-process tests. */
export class InMemoryAuthorizationCodeStore implements AuthorizationCodeStore {
  private readonly codes = new Map<string, { grant: AuthorizationCodeGrant; expiresAt: number; redeemed: boolean }>();

  async issue(key: string, grant: AuthorizationCodeGrant, expiresAt: number): Promise<void> {
    this.codes.set(key, { grant, expiresAt, redeemed: false });
  }

  async redeem(key: string, now: number): Promise<CodeRedemption> {
    for (const [k, entry] of this.codes) if (entry.expiresAt <= now && k !== key) this.codes.delete(k);
    const entry = this.codes.get(key);
    if (!entry) return { kind: 'unknown' };
    if (entry.expiresAt <= now) return { kind: 'expired' };
    if (entry.redeemed) return { kind: 'replayed', grant: entry.grant };
    entry.redeemed = true;
    return { kind: 'redeemed', grant: entry.grant };
  }
}

const { partitionKey: PK, sortKey: SK, timeToLive: TTL } = REVOCATION_TABLE;
const CODE_SORT_KEY = 'code';
/** Keys are SHA-256 digests, base64url. */
const CODE_KEY = /^[A-Za-z0-9_-]{43}$/;

function itemKey(key: string): Record<string, AttributeValue> {
  return { [PK]: { S: `code#${key}` }, [SK]: { S: CODE_SORT_KEY } };
}

function parseGrant(text: string | undefined): AuthorizationCodeGrant | undefined {
  if (!text) return undefined;
  try {
    const grant = JSON.parse(text) as AuthorizationCodeGrant;
    return grant && typeof grant.clientId === 'string' && typeof grant.sessionId === 'string' && grant.claims && typeof grant.claims === 'object'
      ? grant
      : undefined;
  } catch {
    return undefined;
  }
}

export class DynamoDbAuthorizationCodeStore implements AuthorizationCodeStore {
  constructor(
    private readonly tableName: string,
    private readonly client: DynamoDBClient,
  ) {}

  async issue(key: string, grant: AuthorizationCodeGrant, expiresAt: number): Promise<void> {
    if (!CODE_KEY.test(key)) throw new AuthorizationCodeStoreError('issue a code', new Error('the key is not a SHA-256 digest'));
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { ...itemKey(key), grant: { S: JSON.stringify(grant) }, [TTL]: { N: String(expiresAt) } },
          // Codes are 256 random bits: a collision means something is wrong, never overwrite.
          ConditionExpression: `attribute_not_exists(${PK})`,
        }),
        dynamoCallOptions(),
      );
    } catch (error) {
      throw new AuthorizationCodeStoreError('issue a code', error);
    }
  }

  async redeem(key: string, now: number): Promise<CodeRedemption> {
    if (!CODE_KEY.test(key)) return { kind: 'unknown' };
    let item: Record<string, AttributeValue> | undefined;
    try {
      // A code redeemed a moment ago by another container must be seen.
      item = (await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: itemKey(key), ConsistentRead: true }), dynamoCallOptions())).Item;
    } catch (error) {
      throw new AuthorizationCodeStoreError('read a code', error);
    }
    const grant = parseGrant(item?.grant?.S);
    const expiresAt = Number(item?.[TTL]?.N);
    if (!item || !grant || !Number.isFinite(expiresAt)) return { kind: 'unknown' };
    if (expiresAt <= now) return { kind: 'expired' };
    if (item.redeemedAt !== undefined) return { kind: 'replayed', grant };
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: { ...item, redeemedAt: { N: String(now) } },
          ConditionExpression: `attribute_exists(${PK}) AND attribute_not_exists(#redeemedAt)`,
          ExpressionAttributeNames: { '#redeemedAt': 'redeemedAt' },
        }),
        dynamoCallOptions(),
      );
      return { kind: 'redeemed', grant };
    } catch (error) {
      if (isConditionFailed(error)) return { kind: 'replayed', grant };
      throw new AuthorizationCodeStoreError('redeem a code', error);
    }
  }
}
