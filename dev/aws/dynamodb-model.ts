/**
 * A stateful model of Amazon DynamoDB, for tests of code that keeps state in a table
 * (the auth service's session revocations). `installDynamoDbFake(model)` answers SDK v3
 * calls (`DynamoDBClient`) through aws-sdk-client-mock.
 *
 * Modelled, after the DynamoDB API reference (2012-08-10) and developer guide:
 *   - Tables with a string or number partition key and optional sort key; an unknown
 *     table is ResourceNotFoundException. Items are keyed by their key attributes.
 *   - PutItem replaces the whole item; the item must carry the key attributes with their
 *     declared types (ValidationException otherwise).
 *     https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html
 *   - Condition expressions (the subset the code uses: attribute_exists,
 *     attribute_not_exists, comparisons = <> < <= > >=, AND, OR, NOT, parentheses,
 *     #name and :value placeholders) are checked against the current item; a false
 *     condition throws ConditionalCheckFailedException and writes nothing. An empty
 *     ExpressionAttributeValues map, or a placeholder that is not defined, or one that
 *     is defined but unused, is a ValidationException, as the service answers.
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.ConditionExpressions.html
 *   - Read consistency: GetItem and Query are eventually consistent unless
 *     ConsistentRead is true; "the response might not reflect the results of a recently
 *     completed write operation". The model shows an eventually consistent read the
 *     table as it was `eventualConsistencyLagMs` ago (default 1 s), a strongly
 *     consistent read the latest state.
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html
 *   - Query: KeyConditionExpression with `pk = :v` and optionally one sort-key condition
 *     (= < <= > >= BETWEEN begins_with); items in ascending sort-key order (strings by
 *     UTF-8 bytes), ProjectionExpression, ExclusiveStartKey / LastEvaluatedKey. A page
 *     holds at most 1 MB in the service; the model holds `queryPageSize` items (default
 *     100), so paging is exercised with small tables.
 *     https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html
 *   - Time to live: an item whose TTL attribute (a Number, epoch seconds) is in the past
 *     is expired but NOT deleted at once: "DynamoDB typically deletes expired items
 *     within two days of expiration ... Items that have expired and not been deleted will
 *     still show up in reads, queries, and scans." The model deletes only when a test
 *     calls `runTtlDeletion()` (the background process), so code that trusts TTL to hide
 *     items is caught.
 *     https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html
 *
 * Failures: `injectFailure({ operation, times })` makes the next calls of an operation
 * throw (a network error by default).
 *
 * Size: one stateful model of the DynamoDB semantics the auth service uses (conditions,
 * updates, TTL, errors), plus its SDK adapter.
 */
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ResourceNotFoundException,
  type AttributeValue,
  type GetItemCommandInput,
  type PutItemCommandInput,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { REVOCATION_TABLE } from '../../core/auth/revocation-table';

export type Item = Record<string, AttributeValue>;
export type DynamoDbOperation = 'GetItem' | 'PutItem' | 'Query';

export interface TableDefinition {
  readonly name: string;
  readonly partitionKey: { readonly name: string; readonly type: 'S' | 'N' };
  readonly sortKey?: { readonly name: string; readonly type: 'S' | 'N' };
  /** Name of the TTL attribute, when TTL is on. */
  readonly timeToLiveAttribute?: string;
}

interface Version {
  readonly writtenAt: number;
  /** undefined: deleted. */
  readonly item?: Item;
}

interface Table {
  readonly definition: TableDefinition;
  /** Versions per key, oldest first. */
  readonly items: Map<string, Version[]>;
}

export class ValidationException extends Error {
  readonly name = 'ValidationException';
  readonly $fault = 'client';
}

export interface DynamoDbModelOptions {
  /** Clock, epoch milliseconds. @default Date.now */
  readonly now?: () => number;
  /** How far behind an eventually consistent read may be. @default 1000 */
  readonly eventualConsistencyLagMs?: number;
  /** Items per Query page (the service: up to 1 MB). @default 100 */
  readonly queryPageSize?: number;
}

export class DynamoDbModel {
  private readonly tables = new Map<string, Table>();
  private readonly failures: Array<{ operation: DynamoDbOperation; remaining: number; error: Error }> = [];
  readonly calls: Array<{ operation: DynamoDbOperation; input: Record<string, unknown> }> = [];
  readonly now: () => number;
  private readonly lagMs: number;
  private readonly pageSize: number;

  constructor(options: DynamoDbModelOptions = {}) {
    this.now = options.now ?? Date.now;
    this.lagMs = options.eventualConsistencyLagMs ?? 1000;
    this.pageSize = options.queryPageSize ?? 100;
  }

  createTable(definition: TableDefinition): void {
    this.tables.set(definition.name, { definition, items: new Map() });
  }

  injectFailure(failure: { operation: DynamoDbOperation; times?: number; error?: Error }): void {
    const error = failure.error ?? Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' });
    this.failures.push({ operation: failure.operation, remaining: failure.times ?? 1, error });
  }

  /** Every item physically in the table now (expired ones included, until TTL deletion runs). */
  scanAll(tableName: string): Item[] {
    return [...this.table(tableName).items.values()].map((versions) => versions[versions.length - 1].item).filter((item): item is Item => item !== undefined);
  }

  /** The TTL background process: deletes every expired item. Returns how many it deleted. */
  runTtlDeletion(tableName: string): number {
    const table = this.table(tableName);
    const attribute = table.definition.timeToLiveAttribute;
    if (!attribute) return 0;
    let deleted = 0;
    for (const [key, versions] of table.items) {
      const item = versions[versions.length - 1].item;
      const expiry = item?.[attribute]?.N;
      if (item && expiry !== undefined && Number(expiry) * 1000 < this.now()) {
        versions.push({ writtenAt: this.now(), item: undefined });
        table.items.set(key, versions);
        deleted += 1;
      }
    }
    return deleted;
  }

  putItem(input: PutItemCommandInput): Record<string, never> {
    this.record('PutItem', input);
    const table = this.table(input.TableName);
    const item = input.Item ?? {};
    const key = this.keyOf(table, item, 'Item');
    const used = new Set<string>();
    const names = input.ExpressionAttributeNames ?? {};
    const values = checkValues(input.ExpressionAttributeValues);
    const current = this.latest(table, key);
    if (input.ConditionExpression !== undefined) {
      const holds = evaluateCondition(input.ConditionExpression, current, names, values, used);
      checkAllUsed(values, used);
      if (!holds) throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    } else if (input.ExpressionAttributeValues !== undefined) {
      throw new ValidationException('ExpressionAttributeValues can only be specified when using expressions');
    }
    const versions = table.items.get(key) ?? [];
    versions.push({ writtenAt: this.now(), item: structuredClone(item) });
    table.items.set(key, versions);
    return {};
  }

  getItem(input: GetItemCommandInput): { Item?: Item } {
    this.record('GetItem', input);
    const table = this.table(input.TableName);
    const keyInput = input.Key ?? {};
    const key = this.keyOf(table, keyInput, 'Key');
    const extra = Object.keys(keyInput).filter((name) => name !== table.definition.partitionKey.name && name !== table.definition.sortKey?.name);
    if (extra.length > 0) throw new ValidationException('The provided key element does not match the schema');
    const item = input.ConsistentRead ? this.latest(table, key) : this.asOf(table, key, this.now() - this.lagMs);
    return item ? { Item: project(item, input.ProjectionExpression, input.ExpressionAttributeNames ?? {}) } : {};
  }

  query(input: QueryCommandInput): { Items: Item[]; Count: number; LastEvaluatedKey?: Item } {
    this.record('Query', input);
    const table = this.table(input.TableName);
    const names = input.ExpressionAttributeNames ?? {};
    const values = checkValues(input.ExpressionAttributeValues);
    const used = new Set<string>();
    if (!input.KeyConditionExpression)
      throw new ValidationException('Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.');
    const matches = parseKeyCondition(input.KeyConditionExpression, table.definition, names, values, used);
    checkAllUsed(values, used);
    const at = input.ConsistentRead ? Number.POSITIVE_INFINITY : this.now() - this.lagMs;
    const sortName = table.definition.sortKey?.name;
    let items = [...table.items.keys()].map((key) => this.asOf(table, key, at)).filter((item): item is Item => item !== undefined && matches(item));
    items.sort((a, b) => (sortName ? compareValues(a[sortName], b[sortName]) : 0));
    if (input.ExclusiveStartKey) {
      const start = input.ExclusiveStartKey;
      items = items.filter((item) => sortName !== undefined && compareValues(item[sortName], start[sortName]) > 0);
    }
    const limit = Math.min(input.Limit ?? Number.POSITIVE_INFINITY, this.pageSize);
    const page = items.slice(0, limit);
    const more = items.length > page.length;
    const last = page[page.length - 1];
    return {
      Items: page.map((item) => project(item, input.ProjectionExpression, names)),
      Count: page.length,
      LastEvaluatedKey: more && last ? keyAttributes(table.definition, last) : undefined,
    };
  }

  private record(operation: DynamoDbOperation, input: object): void {
    this.calls.push({ operation, input: structuredClone(input) as Record<string, unknown> });
    const failure = this.failures.find((f) => f.operation === operation && f.remaining > 0);
    if (failure) {
      failure.remaining -= 1;
      throw failure.error;
    }
  }

  private table(name: string | undefined): Table {
    const table = name ? this.tables.get(name) : undefined;
    if (!table) throw new ResourceNotFoundException({ message: `Requested resource not found: Table: ${name} not found`, $metadata: {} });
    return table;
  }

  private keyOf(table: Table, item: Item, field: string): string {
    const parts = [table.definition.partitionKey, table.definition.sortKey].filter((k): k is NonNullable<typeof k> => k !== undefined);
    return JSON.stringify(
      parts.map((k) => {
        const value = item[k.name];
        if (!value || !(k.type in value)) {
          throw new ValidationException(`One or more parameter values were invalid: Missing the key ${k.name} in the ${field} (type ${k.type})`);
        }
        return (value as unknown as Record<string, string>)[k.type];
      }),
    );
  }

  private latest(table: Table, key: string): Item | undefined {
    const versions = table.items.get(key);
    return versions?.[versions.length - 1].item;
  }

  private asOf(table: Table, key: string, at: number): Item | undefined {
    const versions = table.items.get(key) ?? [];
    let found: Item | undefined;
    for (const version of versions) if (version.writtenAt <= at) found = version.item;
    return found;
  }
}

/** A model holding the gateway's table (revocations, session records, authorization codes) as the construct creates it. */
export function gatewayTableModel(name: string, now: () => number): DynamoDbModel {
  const model = new DynamoDbModel({ now });
  model.createTable({
    name,
    partitionKey: { name: REVOCATION_TABLE.partitionKey, type: 'S' },
    sortKey: { name: REVOCATION_TABLE.sortKey, type: 'S' },
    timeToLiveAttribute: REVOCATION_TABLE.timeToLive,
  });
  return model;
}

function checkValues(values: Record<string, AttributeValue> | undefined): Record<string, AttributeValue> {
  if (values !== undefined && Object.keys(values).length === 0) throw new ValidationException('ExpressionAttributeValues must not be empty');
  return values ?? {};
}

function checkAllUsed(values: Record<string, AttributeValue>, used: Set<string>): void {
  const unused = Object.keys(values).filter((name) => !used.has(name));
  if (unused.length > 0) throw new ValidationException(`Value provided in ExpressionAttributeValues unused in expressions: keys: {${unused.join(', ')}}`);
}

function keyAttributes(definition: TableDefinition, item: Item): Item {
  const key: Item = { [definition.partitionKey.name]: item[definition.partitionKey.name] };
  if (definition.sortKey) key[definition.sortKey.name] = item[definition.sortKey.name];
  return key;
}

function compareValues(a: AttributeValue | undefined, b: AttributeValue | undefined): number {
  if (a?.N !== undefined && b?.N !== undefined) return Number(a.N) - Number(b.N);
  return Buffer.compare(Buffer.from(a?.S ?? '', 'utf8'), Buffer.from(b?.S ?? '', 'utf8'));
}

function resolveName(token: string, names: Record<string, string>): string {
  if (!token.startsWith('#')) return token;
  const name = names[token];
  if (name === undefined) throw new ValidationException(`An expression attribute name used in the document path is not defined; attribute name: ${token}`);
  return name;
}

function resolveValue(token: string, values: Record<string, AttributeValue>, used: Set<string>): AttributeValue {
  const value = values[token];
  if (value === undefined) throw new ValidationException(`An expression attribute value used in expression is not defined; attribute value: ${token}`);
  used.add(token);
  return value;
}

function project(item: Item, projection: string | undefined, names: Record<string, string>): Item {
  if (!projection) return structuredClone(item);
  const out: Item = {};
  for (const token of projection.split(',').map((t) => t.trim())) {
    const name = resolveName(token, names);
    if (item[name] !== undefined) out[name] = structuredClone(item[name]);
  }
  return out;
}

/** Tokens of a condition expression. */
function tokenize(expression: string): string[] {
  const tokens = expression.match(/\(|\)|,|<>|<=|>=|=|<|>|[#:]?[A-Za-z_][A-Za-z0-9_]*/g) ?? [];
  const rebuilt = tokens.join('');
  if (rebuilt !== expression.replace(/\s+/g, ''))
    throw new Error(`The DynamoDB model cannot parse the expression ${JSON.stringify(expression)}: extend dev/aws/dynamodb-model.ts.`);
  return tokens;
}

const COMPARATORS = ['=', '<>', '<', '<=', '>', '>='];

/** Evaluates a condition expression against an item (undefined: no item). */
function evaluateCondition(
  expression: string,
  item: Item | undefined,
  names: Record<string, string>,
  values: Record<string, AttributeValue>,
  used: Set<string>,
): boolean {
  const tokens = tokenize(expression);
  let pos = 0;
  const peek = () => tokens[pos];
  const next = () => tokens[pos++];
  const expect = (token: string) => {
    if (next() !== token) throw new ValidationException(`Invalid ConditionExpression: expected ${token} in ${expression}`);
  };
  const operand = (token: string): AttributeValue | undefined =>
    token.startsWith(':') ? resolveValue(token, values, used) : item?.[resolveName(token, names)];
  const primary = (): boolean => {
    const token = next();
    if (token === '(') {
      const value = disjunction();
      expect(')');
      return value;
    }
    if (token?.toUpperCase() === 'NOT') return !primary();
    if (token === 'attribute_exists' || token === 'attribute_not_exists') {
      expect('(');
      const name = resolveName(next(), names);
      expect(')');
      const exists = item !== undefined && item[name] !== undefined;
      return token === 'attribute_exists' ? exists : !exists;
    }
    const left = operand(token);
    const comparator = next();
    if (!COMPARATORS.includes(comparator)) throw new ValidationException(`Invalid ConditionExpression: unexpected ${comparator} in ${expression}`);
    const right = operand(next());
    // A comparison with a missing attribute is false (and so is <> against a missing one).
    if (left === undefined || right === undefined) return false;
    const sameType = (left.N !== undefined) === (right.N !== undefined);
    if (!sameType) return comparator === '<>';
    const order = compareValues(left, right);
    return { '=': order === 0, '<>': order !== 0, '<': order < 0, '<=': order <= 0, '>': order > 0, '>=': order >= 0 }[comparator] as boolean;
  };
  const conjunction = (): boolean => {
    let value = primary();
    while (peek()?.toUpperCase() === 'AND') {
      next();
      const right = primary();
      value = value && right;
    }
    return value;
  };
  const disjunction = (): boolean => {
    let value = conjunction();
    while (peek()?.toUpperCase() === 'OR') {
      next();
      const right = conjunction();
      value = value || right;
    }
    return value;
  };
  const result = disjunction();
  if (pos !== tokens.length) throw new ValidationException(`Invalid ConditionExpression: unexpected ${tokens[pos]} in ${expression}`);
  return result;
}

/** A key condition: partition key equality, and at most one condition on the sort key. */
function parseKeyCondition(
  expression: string,
  definition: TableDefinition,
  names: Record<string, string>,
  values: Record<string, AttributeValue>,
  used: Set<string>,
): (item: Item) => boolean {
  const tokens = tokenize(expression);
  const conditions: Array<(item: Item) => boolean> = [];
  const keyNames = new Set<string>();
  let pos = 0;
  while (pos < tokens.length) {
    if (tokens[pos] === 'begins_with') {
      const name = resolveName(tokens[pos + 2], names);
      const prefix = resolveValue(tokens[pos + 4], values, used).S ?? '';
      keyNames.add(name);
      conditions.push((item) => (item[name]?.S ?? '').startsWith(prefix));
      pos += 6;
    } else {
      const name = resolveName(tokens[pos], names);
      const comparator = tokens[pos + 1];
      keyNames.add(name);
      if (comparator.toUpperCase() === 'BETWEEN') {
        const low = resolveValue(tokens[pos + 2], values, used);
        const high = resolveValue(tokens[pos + 4], values, used);
        conditions.push((item) => compareValues(item[name], low) >= 0 && compareValues(item[name], high) <= 0);
        pos += 5;
      } else {
        if (!COMPARATORS.includes(comparator) || comparator === '<>') throw new ValidationException(`Invalid KeyConditionExpression: ${expression}`);
        const right = resolveValue(tokens[pos + 2], values, used);
        conditions.push((item) => {
          const order = compareValues(item[name], right);
          return item[name] !== undefined && ({ '=': order === 0, '<': order < 0, '<=': order <= 0, '>': order > 0, '>=': order >= 0 }[comparator] as boolean);
        });
        pos += 3;
      }
    }
    if (pos < tokens.length) {
      if (tokens[pos].toUpperCase() !== 'AND') throw new ValidationException(`Invalid KeyConditionExpression: ${expression}`);
      pos += 1;
    }
  }
  const allowed = [definition.partitionKey.name, definition.sortKey?.name];
  if (!keyNames.has(definition.partitionKey.name) || [...keyNames].some((name) => !allowed.includes(name))) {
    throw new ValidationException('Query condition missed key schema element, or uses a non-key attribute');
  }
  return (item) => conditions.every((condition) => condition(item));
}

export function installDynamoDbFake(model: DynamoDbModel): AwsClientStub<DynamoDBClient> {
  const mock = mockClient(DynamoDBClient);
  mock.on(PutItemCommand).callsFake(async (input: PutItemCommandInput) => model.putItem(input));
  mock.on(GetItemCommand).callsFake(async (input: GetItemCommandInput) => model.getItem(input));
  mock.on(QueryCommand).callsFake(async (input: QueryCommandInput) => model.query(input));
  return mock;
}
