/**
 * The session revocation store: the DynamoDB implementation against the DynamoDB model
 * (dev/aws/dynamodb-model.ts: conditional writes, eventual vs consistent reads, lazy
 * TTL deletion, paging), the in-memory one for `npm run local`, both held to the same
 * behaviour; and the deadlines a logout records.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { REVOCATION_TABLE } from '../../core/auth/revocation-table';
import {
  DynamoDbRevocationStore,
  InMemoryRevocationStore,
  logoutRevocations,
  RevocationStoreError,
  type SessionRevocationStore,
} from '../../lambda/auth/revocations';
import { DynamoDbModel, gatewayTableModel, installDynamoDbFake, ValidationException } from '../../dev/aws/dynamodb-model';

const TABLE = 'revocations';
const T0 = 1_900_000_000;

/** A model and a clock that the test moves (epoch seconds). */
function dynamo(): { model: DynamoDbModel; clock: { now: number }; stores: () => DynamoDbRevocationStore; restore: () => void } {
  const clock = { now: T0 };
  const model = gatewayTableModel(TABLE, () => clock.now * 1000);
  const mock = installDynamoDbFake(model);
  // Each call is a separate client, as separate Lambda containers have.
  return { model, clock, stores: () => new DynamoDbRevocationStore(TABLE, new DynamoDBClient({ region: 'eu-west-1' })), restore: () => mock.restore() };
}

describe.each([
  ['DynamoDB', () => dynamo()],
  [
    'in memory',
    () => {
      const store = new InMemoryRevocationStore();
      return { model: undefined, clock: { now: T0 }, stores: () => store, restore: () => undefined };
    },
  ],
] as const)('%s store', (_name, make) => {
  let env: { clock: { now: number }; stores: () => SessionRevocationStore; restore: () => void };
  beforeEach(() => {
    env = make();
  });
  afterEach(() => env.restore());

  test('a revoked sid is refused until refuseRefreshUntil and listed until listUntil, then neither', async () => {
    const store = env.stores();
    await store.revoke({ sid: 'sid-a', listUntil: T0 + 630, refuseRefreshUntil: T0 + 43_230 });
    expect(await store.isRevoked('sid-a', T0)).toBe(true);
    expect(await store.isRevoked('sid-other', T0)).toBe(false);
    expect(await store.listRevoked(T0)).toEqual([{ sid: 'sid-a', until: T0 + 630 }]);
    expect(await store.listRevoked(T0 + 629)).toEqual([{ sid: 'sid-a', until: T0 + 630 }]);
    expect(await store.listRevoked(T0 + 630)).toEqual([]);
    expect(await store.isRevoked('sid-a', T0 + 43_229)).toBe(true);
    expect(await store.isRevoked('sid-a', T0 + 43_230)).toBe(false);
  });

  test('recording a sid again keeps the later deadlines, never shortens them', async () => {
    const store = env.stores();
    await store.revoke({ sid: 'sid-b', listUntil: T0 + 600, refuseRefreshUntil: T0 + 5000 });
    await store.revoke({ sid: 'sid-b', listUntil: T0 + 300, refuseRefreshUntil: T0 + 1000 });
    await store.revoke({ sid: 'sid-b', listUntil: T0 + 900, refuseRefreshUntil: T0 + 2000 });
    expect(await store.listRevoked(T0)).toEqual([{ sid: 'sid-b', until: T0 + 900 }]);
    expect(await store.isRevoked('sid-b', T0 + 4999)).toBe(true);
  });

  test('a revocation recorded by one instance is seen by another at once', async () => {
    const one = env.stores();
    const other = env.stores();
    await one.revoke({ sid: 'sid-c', listUntil: T0 + 600, refuseRefreshUntil: T0 + 600 });
    expect(await other.isRevoked('sid-c', T0)).toBe(true);
    expect((await other.listRevoked(T0)).map((e) => e.sid)).toEqual(['sid-c']);
  });

  test('the list is complete (several pages), each sid once, ordered by until', async () => {
    const store = env.stores();
    for (let i = 0; i < 250; i += 1) await store.revoke({ sid: `sid-${i}`, listUntil: T0 + 1 + (i % 7), refuseRefreshUntil: T0 + 100 });
    const list = await store.listRevoked(T0);
    expect(list).toHaveLength(250);
    expect(new Set(list.map((e) => e.sid)).size).toBe(250);
    expect(list.map((e) => e.until)).toEqual([...list.map((e) => e.until)].sort((a, b) => a - b));
  });

  test('only session ids this service mints are written', async () => {
    await expect(env.stores().revoke({ sid: 'a#b', listUntil: T0 + 1, refuseRefreshUntil: T0 + 1 })).rejects.toBeInstanceOf(RevocationStoreError);
  });
});

describe('DynamoDB store against the documented semantics', () => {
  let env: ReturnType<typeof dynamo>;
  beforeEach(() => {
    env = dynamo();
  });
  afterEach(() => env.restore());

  test('reads are strongly consistent: a logout written a moment ago is seen (an eventually consistent read would miss it)', async () => {
    const store = env.stores();
    await store.revoke({ sid: 'sid-d', listUntil: T0 + 600, refuseRefreshUntil: T0 + 600 });
    const key = { [REVOCATION_TABLE.partitionKey]: { S: 'sid#sid-d' }, [REVOCATION_TABLE.sortKey]: { S: 'session' } };
    // The model's eventually consistent read still shows the table of a second ago.
    expect(env.model.getItem({ TableName: TABLE, Key: key }).Item).toBeUndefined();
    expect(await store.isRevoked('sid-d', T0)).toBe(true);
    const reads = env.model.calls.filter((c) => c.operation === 'GetItem' || c.operation === 'Query');
    expect(reads.filter((c) => c.input.ConsistentRead !== true).length).toBe(1); // the model probe above only
  });

  test('expired items linger until the TTL process runs, and the store filters them itself', async () => {
    const store = env.stores();
    await store.revoke({ sid: 'sid-e', listUntil: T0 + 60, refuseRefreshUntil: T0 + 120 });
    env.clock.now = T0 + 500;
    expect(env.model.scanAll(TABLE)).toHaveLength(2);
    expect(await store.listRevoked(env.clock.now)).toEqual([]);
    expect(await store.isRevoked('sid-e', env.clock.now)).toBe(false);
    expect(env.model.runTtlDeletion(TABLE)).toBe(2);
    expect(env.model.scanAll(TABLE)).toHaveLength(0);
  });

  test('writes are conditional: a repeated logout meets ConditionalCheckFailedException and changes nothing', async () => {
    const store = env.stores();
    await store.revoke({ sid: 'sid-f', listUntil: T0 + 600, refuseRefreshUntil: T0 + 9000 });
    await store.revoke({ sid: 'sid-f', listUntil: T0 + 600, refuseRefreshUntil: T0 + 100 });
    const puts = env.model.calls.filter((c) => c.operation === 'PutItem');
    expect(puts).toHaveLength(4);
    expect(puts.every((c) => typeof c.input.ConditionExpression === 'string')).toBe(true);
    const session = env.model.scanAll(TABLE).find((item) => item[REVOCATION_TABLE.sortKey].S === 'session')!;
    expect(session.refuseRefreshUntil).toEqual({ N: String(T0 + 9000) });
    expect(session[REVOCATION_TABLE.timeToLive]).toEqual({ N: String(T0 + 9000) });
  });

  test('a store that cannot be reached fails with RevocationStoreError (the service answers 503), never "not revoked"', async () => {
    const store = env.stores();
    env.model.injectFailure({ operation: 'GetItem' });
    await expect(store.isRevoked('sid-g', T0)).rejects.toBeInstanceOf(RevocationStoreError);
    env.model.injectFailure({ operation: 'Query' });
    await expect(store.listRevoked(T0)).rejects.toThrow(/list revocations/);
    env.model.injectFailure({ operation: 'PutItem' });
    await expect(store.revoke({ sid: 'sid-g', listUntil: T0 + 1, refuseRefreshUntil: T0 + 1 })).rejects.toThrow(/record a revocation/);
  });

  test('the model answers as DynamoDB does to malformed requests', () => {
    expect(() => env.model.putItem({ TableName: TABLE, Item: { pk: { S: 'x' } } })).toThrow(ValidationException);
    expect(() =>
      env.model.putItem({
        TableName: TABLE,
        Item: { pk: { S: 'x' }, sk: { S: 'y' } },
        ConditionExpression: 'attribute_not_exists(pk)',
        ExpressionAttributeValues: {},
      }),
    ).toThrow(/must not be empty/);
    expect(() => env.model.putItem({ TableName: TABLE, Item: { pk: { S: 'x' }, sk: { S: 'y' } }, ConditionExpression: 'a < :missing' })).toThrow(/not defined/);
    expect(() => env.model.getItem({ TableName: 'nope', Key: {} })).toThrow(/not found/);
  });
});

describe('deadlines a logout records', () => {
  const base = { now: T0, sessionTtlSeconds: 600, clockSkewSeconds: 30, refreshCookieMaxAgeSeconds: 43_200 };

  test('listed until the last token that can carry the sid expires (+ skew); refreshes refused until the refresh cookie expires (+ skew)', () => {
    expect(logoutRevocations({ ...base, session: { sid: 's1', exp: T0 + 200 }, refresh: { sid: 's1', exp: T0 + 30_000 } })).toEqual([
      { sid: 's1', listUntil: T0 + 630, refuseRefreshUntil: T0 + 30_030 },
    ]);
  });

  test('a token presented with a later exp (a longer lifetime before a redeploy) extends the listing', () => {
    expect(logoutRevocations({ ...base, session: { sid: 's1', exp: T0 + 3600 } })).toEqual([
      { sid: 's1', listUntil: T0 + 3630, refuseRefreshUntil: T0 + 43_230 },
    ]);
  });

  test('without a refresh cookie, refreshes are refused for the longest a refresh cookie lives; two sids are both revoked; none without cookies', () => {
    expect(logoutRevocations({ ...base, session: { sid: 's1', exp: T0 + 10 }, refresh: { sid: 's2', exp: T0 + 900 } })).toEqual([
      { sid: 's1', listUntil: T0 + 630, refuseRefreshUntil: T0 + 43_230 },
      { sid: 's2', listUntil: T0 + 630, refuseRefreshUntil: T0 + 930 },
    ]);
    expect(logoutRevocations(base)).toEqual([]);
  });
});
