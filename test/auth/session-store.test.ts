/**
 * The sessions' server-side records (lambda/auth/session-store.ts), both stores held to
 * one contract: the DynamoDB store against the DynamoDB model (conditional writes,
 * consistent reads, TTL that deletes lazily, as the DynamoDB documentation describes them:
 * see dev/aws/dynamodb-model.ts) and the in-memory store of `npm run local`; and the
 * encryption of the secrets under the key only the refresh cookie holds.
 */
import { randomBytes } from 'node:crypto';
import { REVOCATION_TABLE } from '../../core/auth/revocation-table';
import {
  DynamoDbSessionRecordStore,
  InMemorySessionRecordStore,
  newSessionKey,
  NO_LEASE,
  openSecrets,
  sealSecrets,
  SessionStoreError,
  type SessionRecord,
  type SessionRecordStore,
  type SessionSecrets,
} from '../../lambda/auth/session-store';
import { gatewayTableModel, installDynamoDbFake } from '../../dev/aws/dynamodb-model';

const TABLE = 'lg-test-records';
const NOW = 1_900_000_000;
const clock = { ms: NOW * 1000 };
const model = gatewayTableModel(TABLE, () => clock.ms);
const mock = installDynamoDbFake(model);
afterAll(() => mock.restore());

const secrets: SessionSecrets = {
  refreshToken: `rt-${randomBytes(24).toString('base64url')}`,
  idToken: 'header.payload.signature',
  claims: { sub: 'alice', groups: ['g'] },
  groupsClaimSeen: true,
};

function record(sid: string, sealed: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return { sid, gen: 1, genAt: NOW, lease: NO_LEASE, leaseUntil: 0, expiresAt: NOW + 3600, sealed, ...overrides };
}

describe.each<[string, () => SessionRecordStore]>([
  ['DynamoDB (model)', () => new DynamoDbSessionRecordStore(TABLE)],
  ['in memory', () => new InMemorySessionRecordStore()],
])('%s store', (_name, makeStore) => {
  let store: SessionRecordStore;
  beforeEach(() => {
    store = makeStore();
    clock.ms = NOW * 1000;
  });

  test('a created record reads back; another sid reads nothing', async () => {
    const sid = randomBytes(16).toString('base64url');
    await store.create(record(sid, 'sealed-1'));
    expect(await store.get(sid, NOW)).toEqual(record(sid, 'sealed-1'));
    expect(await store.get(randomBytes(16).toString('base64url'), NOW)).toBeUndefined();
  });

  test('replace writes only while the record still has the expected generation and lease (the lease that keeps two refreshes from both redeeming)', async () => {
    const sid = randomBytes(16).toString('base64url');
    await store.create(record(sid, 'sealed-1'));
    // Two requests read gen 1 without a lease; both try to take the lease: one wins.
    const first = await store.replace({ gen: 1, lease: NO_LEASE }, record(sid, 'sealed-1', { lease: 'lease-a', leaseUntil: NOW + 20 }));
    const second = await store.replace({ gen: 1, lease: NO_LEASE }, record(sid, 'sealed-1', { lease: 'lease-b', leaseUntil: NOW + 20 }));
    expect([first, second]).toEqual([true, false]);
    expect((await store.get(sid, NOW))?.lease).toBe('lease-a');
    // The winner moves the generation on; the loser's lease id no longer matches anything.
    expect(await store.replace({ gen: 1, lease: 'lease-b' }, record(sid, 'sealed-2', { gen: 2 }))).toBe(false);
    expect(await store.replace({ gen: 1, lease: 'lease-a' }, record(sid, 'sealed-2', { gen: 2, genAt: NOW + 1 }))).toBe(true);
    expect(await store.get(sid, NOW)).toEqual(record(sid, 'sealed-2', { gen: 2, genAt: NOW + 1 }));
  });

  test('end erases the secrets; a refresh that held the lease cannot write them back; ending twice is fine', async () => {
    const sid = randomBytes(16).toString('base64url');
    await store.create(record(sid, 'sealed-1', { lease: 'lease-a', leaseUntil: NOW + 20 }));
    await store.end(sid, NOW + 7200);
    const ended = await store.get(sid, NOW);
    expect(ended?.sealed).toBeUndefined();
    expect(await store.replace({ gen: 1, lease: 'lease-a' }, record(sid, 'sealed-2', { gen: 2 }))).toBe(false);
    expect((await store.get(sid, NOW))?.sealed).toBeUndefined();
    await store.end(sid, NOW + 60);
    expect((await store.get(sid, NOW))?.expiresAt).toBe(NOW + 7200);
  });

  test('a record past its TTL reads as absent, whether or not it was deleted yet', async () => {
    const sid = randomBytes(16).toString('base64url');
    await store.create(record(sid, 'sealed-1', { expiresAt: NOW + 10 }));
    expect(await store.get(sid, NOW + 9)).toBeDefined();
    clock.ms = (NOW + 10) * 1000;
    expect(await store.get(sid, NOW + 10)).toBeUndefined();
  });
});

describe('DynamoDB specifics', () => {
  test('reads are strongly consistent (a refresh at another container a moment ago is seen) and failures are SessionStoreError without secrets', async () => {
    const store = new DynamoDbSessionRecordStore(TABLE);
    const sid = randomBytes(16).toString('base64url');
    await store.create(record(sid, 'sealed-secret-value'));
    await store.replace({ gen: 1, lease: NO_LEASE }, record(sid, 'sealed-secret-value-2', { gen: 2 }));
    // The model shows eventually consistent reads a second late: only ConsistentRead sees gen 2 now.
    expect((await store.get(sid, NOW))?.gen).toBe(2);
    expect(model.calls.filter((c) => c.operation === 'GetItem').every((c) => c.input.ConsistentRead === true)).toBe(true);
    model.injectFailure({ operation: 'GetItem' });
    const failure = await store.get(sid, NOW).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(SessionStoreError);
    expect(String((failure as Error).message)).not.toContain('sealed-secret');
  });

  test('the record shares the session partition with the revocation item, on its own sort key', async () => {
    const store = new DynamoDbSessionRecordStore(TABLE);
    const sid = randomBytes(16).toString('base64url');
    await store.create(record(sid, 'sealed-1'));
    const item = model.scanAll(TABLE).find((i) => i.sid?.S === sid)!;
    expect({ pk: item[REVOCATION_TABLE.partitionKey].S, sk: item[REVOCATION_TABLE.sortKey].S, ttl: item[REVOCATION_TABLE.timeToLive].N }).toEqual({
      pk: `sid#${sid}`,
      sk: 'refresh',
      ttl: String(NOW + 3600),
    });
  });
});

describe('the secrets, encrypted under the session key', () => {
  test('the table alone decrypts nothing: the sealed value does not contain the tokens, and only the key and sid of the cookie open it', async () => {
    const sid = randomBytes(16).toString('base64url');
    const key = newSessionKey();
    const sealed = await sealSecrets(secrets, sid, key);
    expect(sealed).not.toContain(secrets.refreshToken);
    expect(Buffer.from(sealed.split('.')[3] ?? '', 'base64url').toString('latin1')).not.toContain('rt-');
    expect(await openSecrets(sealed, sid, key)).toEqual(secrets);
    expect(await openSecrets(sealed, sid, newSessionKey())).toBeUndefined();
    // A record copied to another session's item does not open there.
    expect(await openSecrets(sealed, randomBytes(16).toString('base64url'), key)).toBeUndefined();
    expect(await openSecrets(`${sealed.slice(0, -2)}xx`, sid, key)).toBeUndefined();
  });
});
