/**
 * Where ended sessions are remembered: one interface with two implementations, DynamoDB
 * for the Lambda (every container and every HAProxy instance sees the same list) and
 * memory for `npm run local` and tests of one process.
 *
 * A revoked session id has two deadlines:
 *   - `listUntil`: until then it is in the revocation list that HAProxy polls (the `exp`
 *     of the last session token that can carry it, plus the clock skew);
 *   - `refuseRefreshUntil`: until then the auth service refuses to refresh it (the
 *     refresh cookie's own expiry plus the skew; no refresh cookie of that sid opens later).
 * Both are keyed by the session id, never by a token string: an ECDSA signature can be
 * re-encoded (s -> n - s), so one session has more than one token string.
 */
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type QueryCommandOutput,
} from '@aws-sdk/client-dynamodb';
import { REVOCATION_TABLE } from '../../lib/auth/revocation-table';
import type { RevocationList } from '../../lib/session-contract';

export interface SessionRevocation {
  readonly sid: string;
  /** Epoch seconds: listed for HAProxy until then. */
  readonly listUntil: number;
  /** Epoch seconds: refreshes refused until then (at least `listUntil`). */
  readonly refuseRefreshUntil: number;
}

export type RevokedSession = RevocationList['revoked'][number];

/** The store could not be read or written; the message names the operation, never a token. */
export class RevocationStoreError extends Error {
  constructor(operation: string, cause: unknown) {
    super(`The session revocation store failed to ${operation}: ${(cause as Error)?.name ?? 'Error'}: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'RevocationStoreError';
  }
}

export interface SessionRevocationStore {
  /** Records a revocation; recording a sid again keeps the later deadlines. */
  revoke(revocation: SessionRevocation): Promise<void>;
  /** Whether refreshes of `sid` are refused at `now` (epoch seconds). */
  isRevoked(sid: string, now: number): Promise<boolean>;
  /** Every sid whose `listUntil` is after `now`, once each, with its latest deadline. */
  listRevoked(now: number): Promise<RevokedSession[]>;
}

/** What a logout knows about the session it ends (each part only when verified or decrypted). */
export interface LogoutFacts {
  /** Epoch seconds. */
  readonly now: number;
  readonly sessionTtlSeconds: number;
  readonly clockSkewSeconds: number;
  readonly refreshCookieMaxAgeSeconds: number;
  /** The request's session token, when this service signed it. */
  readonly session?: { readonly sid: string; readonly exp?: number };
  /** The request's refresh cookie, when it opened. */
  readonly refresh?: { readonly sid: string; readonly exp?: number };
}

/**
 * The revocations a logout records, one per session id it can name:
 *   - listed until the `exp` of the last token that can carry the sid, plus the skew
 *     HAProxy allows on `exp`. The refresh path checks the store after minting, so every
 *     token handed out was minted before the logout was recorded: its `exp` is at most
 *     now + the session lifetime (or the later `exp` of the token presented);
 *   - refreshes refused until the refresh cookie expires (its `exp` is fixed at login and
 *     kept across rotations, so every copy has it), plus the skew the cookie check allows;
 *     without the cookie, for the longest a refresh cookie lives.
 */
export function logoutRevocations(facts: LogoutFacts): SessionRevocation[] {
  const sids = [...new Set([facts.session?.sid, facts.refresh?.sid].filter((sid): sid is string => sid !== undefined))];
  return sids.map((sid) => {
    const presentedExp = facts.session?.sid === sid ? (facts.session.exp ?? 0) : 0;
    const listUntil = Math.max(facts.now + facts.sessionTtlSeconds, presentedExp) + facts.clockSkewSeconds;
    const refreshCookieExp = facts.refresh?.sid === sid && facts.refresh.exp !== undefined ? facts.refresh.exp : facts.now + facts.refreshCookieMaxAgeSeconds;
    return { sid, listUntil, refuseRefreshUntil: Math.max(listUntil, refreshCookieExp + facts.clockSkewSeconds) };
  });
}

/** Session ids the service mints (base64url); anything else is never written. */
export const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;

function assertSessionId(sid: string): void {
  if (!SESSION_ID.test(sid)) throw new RevocationStoreError('record a revocation', new Error('the session id is not one this service mints'));
}

function latestPerSid(entries: Iterable<RevokedSession>, now: number): RevokedSession[] {
  const latest = new Map<string, number>();
  for (const { sid, until } of entries) {
    if (until > now && until > (latest.get(sid) ?? Number.NEGATIVE_INFINITY)) latest.set(sid, until);
  }
  return [...latest].map(([sid, until]) => ({ sid, until })).sort((a, b) => a.until - b.until || a.sid.localeCompare(b.sid));
}

/** Revocations of this process only: for `npm run local` and single-process tests. */
export class InMemoryRevocationStore implements SessionRevocationStore {
  private readonly entries = new Map<string, { listUntil: number; refuseRefreshUntil: number }>();

  async revoke(revocation: SessionRevocation): Promise<void> {
    assertSessionId(revocation.sid);
    const existing = this.entries.get(revocation.sid);
    this.entries.set(revocation.sid, {
      listUntil: Math.max(existing?.listUntil ?? 0, revocation.listUntil),
      refuseRefreshUntil: Math.max(existing?.refuseRefreshUntil ?? 0, revocation.refuseRefreshUntil, revocation.listUntil),
    });
  }

  async isRevoked(sid: string, now: number): Promise<boolean> {
    const entry = this.entries.get(sid);
    return entry !== undefined && entry.refuseRefreshUntil > now;
  }

  async listRevoked(now: number): Promise<RevokedSession[]> {
    for (const [sid, entry] of this.entries) if (entry.refuseRefreshUntil <= now) this.entries.delete(sid);
    return latestPerSid([...this.entries].map(([sid, entry]) => ({ sid, until: entry.listUntil })), now);
  }
}

/**
 * The DynamoDB table's layout (REVOCATION_TABLE: partition key `pk`, sort key `sk`, both
 * strings; TTL attribute `expiresAt`, epoch seconds):
 *   - one item per revoked session, read with a consistent GetItem at every refresh:
 *     `pk = "sid#<sid>", sk = "session"`, with `listUntil` and `refuseRefreshUntil`;
 *   - one item per listing, all in one partition so that the list is one Query for the
 *     entries still current: `pk = "revoked", sk = "<listUntil, 12 digits>#<sid>"`.
 * DynamoDB deletes items after their TTL lazily (typically within a few days), so every
 * read filters expired items itself. Writes are conditional and idempotent: a retried or
 * repeated logout never shortens a deadline.
 */
const { partitionKey: PK, sortKey: SK, timeToLive: TTL } = REVOCATION_TABLE;
const LIST_PARTITION = 'revoked';
const SESSION_SORT_KEY = 'session';
/** Bound on each DynamoDB call (with the SDK's retries): the inline refresh must answer HAProxy within seconds. */
const CALL_TIMEOUT_MS = 2000;

/** The options of every DynamoDB call of the service (the revocations and the session records share the table). */
export function dynamoCallOptions(): { abortSignal: AbortSignal } {
  return { abortSignal: AbortSignal.timeout(CALL_TIMEOUT_MS) };
}

/** A conditional write whose condition did not hold (nothing was written). */
export function isConditionFailed(error: unknown): boolean {
  return error instanceof ConditionalCheckFailedException || (error as Error)?.name === 'ConditionalCheckFailedException';
}

function sessionKey(sid: string): Record<string, AttributeValue> {
  return { [PK]: { S: `sid#${sid}` }, [SK]: { S: SESSION_SORT_KEY } };
}

function listSortKey(until: number, sid: string): string {
  return `${String(until).padStart(12, '0')}#${sid}`;
}

export class DynamoDbRevocationStore implements SessionRevocationStore {
  constructor(
    private readonly tableName: string,
    private readonly client: DynamoDBClient = new DynamoDBClient({ maxAttempts: 3 }),
  ) {}

  private async putIfLater(item: Record<string, AttributeValue>, condition: string, values?: Record<string, AttributeValue>): Promise<void> {
    try {
      await this.client.send(new PutItemCommand({ TableName: this.tableName, Item: item, ConditionExpression: condition, ExpressionAttributeValues: values }), dynamoCallOptions());
    } catch (error) {
      // The item already holds a deadline at least as late: nothing to do.
      if (isConditionFailed(error)) return;
      throw new RevocationStoreError('record a revocation', error);
    }
  }

  async revoke(revocation: SessionRevocation): Promise<void> {
    assertSessionId(revocation.sid);
    const { sid, listUntil } = revocation;
    const refuseRefreshUntil = Math.max(revocation.refuseRefreshUntil, listUntil);
    // The session item first: refusing the refresh is what keeps a stolen cookie from
    // minting new tokens; the listing then ends the tokens already minted.
    await this.putIfLater(
      {
        ...sessionKey(sid),
        sid: { S: sid },
        listUntil: { N: String(listUntil) },
        refuseRefreshUntil: { N: String(refuseRefreshUntil) },
        [TTL]: { N: String(refuseRefreshUntil) },
      },
      `attribute_not_exists(${PK}) OR refuseRefreshUntil < :refuse`,
      { ':refuse': { N: String(refuseRefreshUntil) } },
    );
    await this.putIfLater(
      {
        [PK]: { S: LIST_PARTITION },
        [SK]: { S: listSortKey(listUntil, sid) },
        sid: { S: sid },
        until: { N: String(listUntil) },
        [TTL]: { N: String(listUntil) },
      },
      `attribute_not_exists(${PK})`,
    );
  }

  async isRevoked(sid: string, now: number): Promise<boolean> {
    if (!SESSION_ID.test(sid)) return false;
    let answer;
    try {
      answer = await this.client.send(
        new GetItemCommand({
          TableName: this.tableName,
          Key: sessionKey(sid),
          // A logout recorded by another container a moment ago must be seen.
          ConsistentRead: true,
          ProjectionExpression: 'refuseRefreshUntil',
        }),
        dynamoCallOptions(),
      );
    } catch (error) {
      throw new RevocationStoreError('read a revocation', error);
    }
    const until = Number(answer.Item?.refuseRefreshUntil?.N);
    // Expired items linger until DynamoDB's TTL process gets to them.
    return Number.isFinite(until) && until > now;
  }

  async listRevoked(now: number): Promise<RevokedSession[]> {
    const entries: RevokedSession[] = [];
    let startKey: Record<string, AttributeValue> | undefined;
    do {
      let page: QueryCommandOutput;
      try {
        page = await this.client.send(
          new QueryCommand({
            TableName: this.tableName,
            KeyConditionExpression: `${PK} = :pk AND ${SK} > :from`,
            // "~" sorts after every base64url character: only entries with listUntil > now.
            ExpressionAttributeValues: { ':pk': { S: LIST_PARTITION }, ':from': { S: listSortKey(now, '~') } },
            ProjectionExpression: 'sid, #until',
            ExpressionAttributeNames: { '#until': 'until' },
            ConsistentRead: true,
            ExclusiveStartKey: startKey,
          }),
          dynamoCallOptions(),
        );
      } catch (error) {
        throw new RevocationStoreError('list revocations', error);
      }
      for (const item of page.Items ?? []) {
        const sid = item.sid?.S;
        const until = Number(item.until?.N);
        if (sid && Number.isFinite(until)) entries.push({ sid, until });
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return latestPerSid(entries, now);
  }
}
