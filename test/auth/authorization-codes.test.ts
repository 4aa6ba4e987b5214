/**
 * Broker mode's authorization codes (lambda/auth/authorization-codes.ts), both stores held
 * to one contract: the DynamoDB store against the DynamoDB model (conditional writes,
 * consistent reads, and TTL that deletes lazily: "Items that have expired and not been
 * deleted will still show up in reads", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html;
 * see dev/aws/dynamodb-model.ts) and the in-memory store of `npm run local`.
 */
import { randomBytes } from 'node:crypto';
import { REVOCATION_TABLE } from '../../core/auth/revocation-table';
import { authorizationCodeKey } from '../../core/auth/looker-broker-protocol';
import {
  AuthorizationCodeStoreError,
  DynamoDbAuthorizationCodeStore,
  InMemoryAuthorizationCodeStore,
  type AuthorizationCodeGrant,
  type AuthorizationCodeStore,
} from '../../lambda/auth/authorization-codes';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { gatewayTableModel, installDynamoDbFake } from '../../dev/aws/dynamodb-model';

const TABLE = 'lg-test-codes';
const NOW = 1_900_000_000;
const clock = { ms: NOW * 1000 };
const model = gatewayTableModel(TABLE, () => clock.ms);
const mock = installDynamoDbFake(model);
afterAll(() => mock.restore());

const grant: AuthorizationCodeGrant = {
  clientId: 'looker',
  redirectUri: 'https://looker.example.com/openidconnect',
  scope: 'openid email profile',
  nonce: 'n-1',
  sessionId: 'sid-1',
  claims: { sub: 'alice', email: 'alice@example.com', groups: ['Analysts'], attr_region: 'emea' },
};

function newCode(): { code: string; key: string } {
  const code = randomBytes(32).toString('base64url');
  return { code, key: authorizationCodeKey(code) };
}

describe.each<[string, () => AuthorizationCodeStore]>([
  ['DynamoDB (model)', () => new DynamoDbAuthorizationCodeStore(TABLE, new DynamoDBClient({ region: 'eu-west-1' }))],
  ['in memory', () => new InMemoryAuthorizationCodeStore()],
])('%s store', (_name, makeStore) => {
  let store: AuthorizationCodeStore;
  beforeEach(() => {
    store = makeStore();
    clock.ms = NOW * 1000;
  });

  test('a code redeems once: the second redemption is a replay, and an unknown code is unknown', async () => {
    const { key } = newCode();
    await store.issue(key, grant, NOW + 60);
    expect(await store.redeem(key, NOW + 1)).toEqual({ kind: 'redeemed', grant });
    expect(await store.redeem(key, NOW + 2)).toEqual({ kind: 'replayed', grant });
    expect(await store.redeem(newCode().key, NOW + 2)).toEqual({ kind: 'unknown' });
  });

  test('two containers redeeming one code at once: exactly one gets it', async () => {
    const { key } = newCode();
    await store.issue(key, grant, NOW + 60);
    const other = makeStore();
    const outcomes = await Promise.all([store.redeem(key, NOW + 1), (store instanceof InMemoryAuthorizationCodeStore ? store : other).redeem(key, NOW + 1)]);
    expect(outcomes.map((o) => o.kind).sort()).toEqual(['redeemed', 'replayed']);
  });

  test('a code past its expiry is refused, though TTL has not deleted it yet', async () => {
    const { key } = newCode();
    await store.issue(key, grant, NOW + 60);
    clock.ms = (NOW + 60) * 1000;
    expect(await store.redeem(key, NOW + 60)).toEqual({ kind: 'expired' });
  });
});

describe('DynamoDB specifics', () => {
  const store = new DynamoDbAuthorizationCodeStore(TABLE, new DynamoDBClient({ region: 'eu-west-1' }));

  test('the table keeps the digest of the code, never the code; the item shares the table with the other item types on its own key; reads are consistent', async () => {
    const { code, key } = newCode();
    await store.issue(key, grant, NOW + 60);
    const items = model.scanAll(TABLE).filter((i) => i[REVOCATION_TABLE.partitionKey].S === `code#${key}`);
    expect(items).toHaveLength(1);
    expect(JSON.stringify(model.scanAll(TABLE))).not.toContain(code);
    expect({ sk: items[0][REVOCATION_TABLE.sortKey].S, ttl: items[0][REVOCATION_TABLE.timeToLive].N }).toEqual({ sk: 'code', ttl: String(NOW + 60) });
    await store.redeem(key, NOW);
    expect(model.calls.filter((c) => c.operation === 'GetItem').every((c) => c.input.ConsistentRead === true)).toBe(true);
  });

  test('an expired item the TTL process has not reached is still in the table, and still refused; after the TTL process it is unknown', async () => {
    const { key } = newCode();
    await store.issue(key, grant, NOW + 5);
    clock.ms = (NOW + 3600) * 1000;
    expect(model.scanAll(TABLE).some((i) => i[REVOCATION_TABLE.partitionKey].S === `code#${key}`)).toBe(true);
    expect(await store.redeem(key, NOW + 3600)).toEqual({ kind: 'expired' });
    model.runTtlDeletion(TABLE);
    expect(await store.redeem(key, NOW + 3600)).toEqual({ kind: 'unknown' });
  });

  test('a failing table is an AuthorizationCodeStoreError (the service answers 503), never a redeemed code', async () => {
    const { key } = newCode();
    await store.issue(key, grant, NOW + 60);
    model.injectFailure({ operation: 'PutItem' });
    await expect(store.redeem(key, NOW)).rejects.toBeInstanceOf(AuthorizationCodeStoreError);
    model.injectFailure({ operation: 'GetItem' });
    await expect(store.redeem(key, NOW)).rejects.toBeInstanceOf(AuthorizationCodeStoreError);
    // The code was never marked redeemed: it still redeems (once).
    expect((await store.redeem(key, NOW)).kind).toBe('redeemed');
  });
});
