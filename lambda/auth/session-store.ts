/**
 * Server-side session records: what a session needs from the IdP after login (the refresh
 * token, the latest ID token for `id_token_hint` at logout, the claims and group-source
 * results of the last login or refresh), kept by session id and encrypted with a key that
 * only the session's refresh cookie carries.
 *
 * Why server-side (docs/idps.md, "Refresh tokens are kept server-side"): refresh tokens of
 * some IdPs are too long for a cookie (Entra's are opaque with no documented maximum, a
 * 3 KB token makes a sealed cookie pass the 4096 bytes browsers keep); the ID token for
 * logout would not fit either; and rotation must be safe when two containers refresh one
 * session at once (IdPs with reuse detection revoke the whole token family when a spent
 * token is presented).
 *
 * Layout in the revocation table (lib/auth/revocation-table.ts; one table, item types by
 * key): `pk = "sid#<sid>", sk = "refresh"` with
 *   - `gen` (N): the cookie generation; a refresh that redeemed the refresh token at the IdP
 *     moves it on, and the refresh cookie names the generation it was issued for;
 *   - `genAt` (N): when `gen` was reached (epoch seconds);
 *   - `lease` (S) and `leaseUntil` (N): the container that is redeeming the refresh token
 *     right now, `-` when none: taking the lease is a conditional write on `gen` and
 *     `lease`, so two concurrent refreshes of one session cannot both redeem;
 *   - `sealed` (S): the secrets, a compact JWE (dir, A256GCM) under the session key, with
 *     the sid in its protected header; absent once the session ended;
 *   - `expiresAt` (N): TTL, the refresh cookie's expiry plus the clock skew.
 * DynamoDB's TTL deletes lazily: reads treat an expired record as absent themselves.
 */
import { randomBytes } from 'node:crypto';
import { CompactEncrypt, compactDecrypt } from 'jose';
import { DynamoDBClient, GetItemCommand, PutItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { REVOCATION_TABLE } from '../../lib/auth/revocation-table';
import { dynamoCallOptions, isConditionFailed, SESSION_ID } from './revocations';

/** No lease held. */
export const NO_LEASE = '-';

export interface SessionRecord {
  readonly sid: string;
  readonly gen: number;
  /** Epoch seconds. */
  readonly genAt: number;
  readonly lease: string;
  /** Epoch seconds; 0 without a lease. */
  readonly leaseUntil: number;
  /** Epoch seconds: the TTL. */
  readonly expiresAt: number;
  /** The encrypted secrets; undefined once the session ended (logout, refusal). */
  readonly sealed?: string;
}

/** What a record keeps, in the clear only inside the service. */
export interface SessionSecrets {
  /** Undefined when the IdP issued none (the session ends with its token). */
  readonly refreshToken?: string;
  /** The latest ID token, for `id_token_hint` at logout. */
  readonly idToken?: string;
  /** The claims of the last login or refresh (ID token and userinfo merged). */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Whether those claims had the groups claim (so a refresh without it is a missing claim, not a user without groups). */
  readonly groupsClaimSeen: boolean;
  /** Groups read from a group source, with when they were read (epoch seconds). */
  readonly groups?: { readonly values: readonly string[]; readonly source: string; readonly readAt: number };
}

/** The store could not be read or written; the message names the operation, never a secret. */
export class SessionStoreError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`The session store failed to ${operation}: ${(cause as Error)?.name ?? 'Error'}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'SessionStoreError';
  }
}

export interface SessionRecordStore {
  /** Writes the record of a new session (its sid is random and new). */
  create(record: SessionRecord): Promise<void>;
  /** The current record (a strongly consistent read), or undefined when there is none or its TTL passed. */
  get(sid: string, now: number): Promise<SessionRecord | undefined>;
  /**
   * Replaces the record if it still has `expected.gen` and `expected.lease`: false when
   * another writer changed it first (or the session ended), and then nothing is written.
   */
  replace(expected: Pick<SessionRecord, 'gen' | 'lease'>, next: SessionRecord): Promise<boolean>;
  /** Ends the session: the secrets are erased and every later replace fails. Idempotent. */
  end(sid: string, expiresAt: number): Promise<void>;
}

/** A random 256-bit session key, base64url: it lives in the refresh cookie only. */
export function newSessionKey(): string {
  return randomBytes(32).toString('base64url');
}

/** A random lease id. */
export function newLease(): string {
  return randomBytes(12).toString('base64url');
}

function keyBytes(sessionKey: string): Uint8Array {
  const bytes = Buffer.from(sessionKey, 'base64url');
  if (bytes.length !== 32) throw new Error('the session key is not 256 bits');
  return bytes;
}

/** Encrypts the secrets for one session (AES-256-GCM under the session key, sid bound in the protected header). */
export async function sealSecrets(secrets: SessionSecrets, sid: string, sessionKey: string): Promise<string> {
  return new CompactEncrypt(Buffer.from(JSON.stringify(secrets), 'utf8')).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', sid }).encrypt(keyBytes(sessionKey));
}

/** Decrypts a record's secrets; undefined when the key does not open them or they belong to another sid. */
export async function openSecrets(sealed: string, sid: string, sessionKey: string): Promise<SessionSecrets | undefined> {
  try {
    const { plaintext, protectedHeader } = await compactDecrypt(sealed, keyBytes(sessionKey), { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] });
    if (protectedHeader.sid !== sid) return undefined;
    const value = JSON.parse(Buffer.from(plaintext).toString('utf8')) as SessionSecrets;
    return value && typeof value === 'object' && value.claims && typeof value.claims === 'object' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Records of this process only: `npm run local` and single-process tests. */
export class InMemorySessionRecordStore implements SessionRecordStore {
  private readonly records = new Map<string, SessionRecord>();

  async create(record: SessionRecord): Promise<void> {
    this.records.set(record.sid, { ...record });
  }

  async get(sid: string, now: number): Promise<SessionRecord | undefined> {
    const record = this.records.get(sid);
    if (record && record.expiresAt <= now) {
      this.records.delete(sid);
      return undefined;
    }
    return record ? { ...record } : undefined;
  }

  async replace(expected: Pick<SessionRecord, 'gen' | 'lease'>, next: SessionRecord): Promise<boolean> {
    const current = this.records.get(next.sid);
    if (!current || current.sealed === undefined || current.gen !== expected.gen || current.lease !== expected.lease) return false;
    this.records.set(next.sid, { ...next });
    return true;
  }

  async end(sid: string, expiresAt: number): Promise<void> {
    const current = this.records.get(sid);
    this.records.set(sid, { sid, gen: current?.gen ?? 0, genAt: current?.genAt ?? 0, lease: NO_LEASE, leaseUntil: 0, expiresAt: Math.max(expiresAt, current?.expiresAt ?? 0) });
  }
}

const { partitionKey: PK, sortKey: SK, timeToLive: TTL } = REVOCATION_TABLE;
const RECORD_SORT_KEY = 'refresh';

function recordKey(sid: string): Record<string, AttributeValue> {
  return { [PK]: { S: `sid#${sid}` }, [SK]: { S: RECORD_SORT_KEY } };
}

function toItem(record: SessionRecord): Record<string, AttributeValue> {
  return {
    ...recordKey(record.sid),
    sid: { S: record.sid },
    gen: { N: String(record.gen) },
    genAt: { N: String(record.genAt) },
    lease: { S: record.lease },
    leaseUntil: { N: String(record.leaseUntil) },
    [TTL]: { N: String(record.expiresAt) },
    ...(record.sealed !== undefined ? { sealed: { S: record.sealed } } : {}),
  };
}

function fromItem(item: Record<string, AttributeValue>): SessionRecord | undefined {
  const sid = item.sid?.S;
  const numbers = [item.gen?.N, item.genAt?.N, item.leaseUntil?.N, item[TTL]?.N].map(Number);
  if (!sid || numbers.some((n) => !Number.isFinite(n)) || item.lease?.S === undefined) return undefined;
  const [gen, genAt, leaseUntil, expiresAt] = numbers;
  return { sid, gen, genAt, lease: item.lease.S, leaseUntil, expiresAt, sealed: item.sealed?.S };
}

export class DynamoDbSessionRecordStore implements SessionRecordStore {
  constructor(
    private readonly tableName: string,
    private readonly client: DynamoDBClient = new DynamoDBClient({ maxAttempts: 3 }),
  ) {}

  async create(record: SessionRecord): Promise<void> {
    if (!SESSION_ID.test(record.sid)) throw new SessionStoreError('create a session record', new Error('the session id is not one this service mints'));
    try {
      await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: toItem(record), ConditionExpression: `attribute_not_exists(${PK})` }), dynamoCallOptions());
    } catch (error) {
      throw new SessionStoreError('create a session record', error);
    }
  }

  async get(sid: string, now: number): Promise<SessionRecord | undefined> {
    if (!SESSION_ID.test(sid)) return undefined;
    let answer;
    try {
      // A refresh or logout by another container a moment ago must be seen.
      answer = await this.client.send(new GetItemCommand({ TableName: this.tableName, Key: recordKey(sid), ConsistentRead: true }), dynamoCallOptions());
    } catch (error) {
      throw new SessionStoreError('read a session record', error);
    }
    const record = answer.Item ? fromItem(answer.Item) : undefined;
    // Expired items linger until DynamoDB's TTL process gets to them.
    return record && record.expiresAt > now ? record : undefined;
  }

  async replace(expected: Pick<SessionRecord, 'gen' | 'lease'>, next: SessionRecord): Promise<boolean> {
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: toItem(next),
          // An ended record has no secrets: nothing replaces it.
          ConditionExpression: 'attribute_exists(#sealed) AND #gen = :gen AND #lease = :lease',
          ExpressionAttributeNames: { '#sealed': 'sealed', '#gen': 'gen', '#lease': 'lease' },
          ExpressionAttributeValues: { ':gen': { N: String(expected.gen) }, ':lease': { S: expected.lease } },
        }),
        dynamoCallOptions(),
      );
      return true;
    } catch (error) {
      if (isConditionFailed(error)) return false;
      throw new SessionStoreError('update a session record', error);
    }
  }

  async end(sid: string, expiresAt: number): Promise<void> {
    if (!SESSION_ID.test(sid)) return;
    try {
      await this.client.send(
        new PutItemCommand({
          TableName: this.tableName,
          Item: toItem({ sid, gen: 0, genAt: 0, lease: NO_LEASE, leaseUntil: 0, expiresAt }),
          // Keep the later expiry when a record outlives this logout's view of it.
          ConditionExpression: `attribute_not_exists(${PK}) OR #ttl <= :ttl OR attribute_exists(#sealed)`,
          ExpressionAttributeNames: { '#ttl': TTL, '#sealed': 'sealed' },
          ExpressionAttributeValues: { ':ttl': { N: String(expiresAt) } },
        }),
        dynamoCallOptions(),
      );
    } catch (error) {
      // Already ended with a later expiry: nothing to do.
      if (isConditionFailed(error)) return;
      throw new SessionStoreError('end a session record', error);
    }
  }
}
