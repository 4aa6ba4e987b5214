/**
 * CloudWatch Logs metric filter patterns for JSON log events, as the gateway's metric
 * filters use them, evaluated the way CloudWatch Logs documents it ("Filter pattern syntax
 * for metric filters", JSON log events: https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html):
 *   { $.field = "text" }   equal string (a * in the text matches any characters)
 *   { $.field != "text" }  not equal
 *   { $.field = * }        the field exists
 *   { $.field >= 500 }     numeric =, !=, <, <=, >, >=
 *   && and || (&& binds tighter), parentheses; a log event that is not JSON never matches.
 * Used to check that an alarm's metric filter, taken from the synthesized template,
 * matches the log lines the real HAProxy writes.
 */
import type { DataPoint } from './alarm';

type Value = { kind: 'string'; text: string } | { kind: 'number'; value: number } | { kind: 'any' };
type Expression = { kind: 'compare'; path: string[]; operator: string; value: Value } | { kind: 'and' | 'or'; left: Expression; right: Expression };

const TOKEN = /\s*(\$(?:\.[A-Za-z0-9_-]+)+|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|&&|\|\||!=|<=|>=|=|<|>|\(|\)|\*|\{|\})/y;

function tokenize(pattern: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < pattern.length) {
    if (/^\s*$/.test(pattern.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(pattern);
    if (!match) throw new Error(`Cannot read the filter pattern at ${JSON.stringify(pattern.slice(at))}`);
    tokens.push(match[1]);
  }
  return tokens;
}

export function parseJsonFilterPattern(pattern: string): Expression {
  const tokens = tokenize(pattern);
  let i = 0;
  const take = (expected?: string) => {
    const token = tokens[i++];
    if (token === undefined || (expected !== undefined && token !== expected))
      throw new Error(`Filter pattern ${JSON.stringify(pattern)}: expected ${expected ?? 'more'} at token ${i}, got ${JSON.stringify(token)}`);
    return token;
  };
  const comparison = (): Expression => {
    if (tokens[i] === '(') {
      take('(');
      const inner = or();
      take(')');
      return inner;
    }
    const selector = take();
    if (!selector.startsWith('$.')) throw new Error(`Filter pattern ${JSON.stringify(pattern)}: expected a $.selector, got ${selector}`);
    const operator = take();
    if (!['=', '!=', '<', '<=', '>', '>='].includes(operator)) throw new Error(`Filter pattern ${JSON.stringify(pattern)}: unknown operator ${operator}`);
    const raw = take();
    const value: Value =
      raw === '*' ? { kind: 'any' } : raw.startsWith('"') ? { kind: 'string', text: JSON.parse(raw) as string } : { kind: 'number', value: Number(raw) };
    return { kind: 'compare', path: selector.slice(2).split('.'), operator, value };
  };
  const and = (): Expression => {
    let left = comparison();
    while (tokens[i] === '&&') {
      take('&&');
      left = { kind: 'and', left, right: comparison() };
    }
    return left;
  };
  const or = (): Expression => {
    let left = and();
    while (tokens[i] === '||') {
      take('||');
      left = { kind: 'or', left, right: and() };
    }
    return left;
  };
  take('{');
  const expression = or();
  take('}');
  if (i !== tokens.length) throw new Error(`Filter pattern ${JSON.stringify(pattern)}: unexpected ${tokens[i]}`);
  return expression;
}

function wildcard(text: string): RegExp {
  return new RegExp(
    `^${text
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
}

function evaluate(expression: Expression, event: Record<string, unknown>): boolean {
  if (expression.kind !== 'compare') {
    return expression.kind === 'and'
      ? evaluate(expression.left, event) && evaluate(expression.right, event)
      : evaluate(expression.left, event) || evaluate(expression.right, event);
  }
  let field: unknown = event;
  for (const key of expression.path) field = field !== null && typeof field === 'object' ? (field as Record<string, unknown>)[key] : undefined;
  const { operator, value } = expression;
  if (value.kind === 'any') return operator === '=' ? field !== undefined : field === undefined;
  if (value.kind === 'string') {
    const equal = typeof field === 'string' && wildcard(value.text).test(field);
    if (operator === '=') return equal;
    if (operator === '!=') return !equal;
    throw new Error(`operator ${operator} does not apply to strings`);
  }
  const number = typeof field === 'number' ? field : typeof field === 'string' && field.trim() !== '' ? Number(field) : NaN;
  if (Number.isNaN(number)) return operator === '!=';
  switch (operator) {
    case '=':
      return number === value.value;
    case '!=':
      return number !== value.value;
    case '<':
      return number < value.value;
    case '<=':
      return number <= value.value;
    case '>':
      return number > value.value;
    default:
      return number >= value.value;
  }
}

/** Whether the log event (one line) matches the pattern; non-JSON lines never match. */
export function matchesJsonFilterPattern(pattern: string, line: string): boolean {
  let event: unknown;
  try {
    event = JSON.parse(line);
  } catch {
    return false;
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) return false;
  return evaluate(parseJsonFilterPattern(pattern), event as Record<string, unknown>);
}

/** A metric filter of a synthesized template: the metric it publishes and the lines it counts. */
export interface TemplateMetricFilter {
  readonly name: string;
  readonly pattern: string;
  readonly namespace: string;
  /** The value a line that does not match publishes (CloudWatch Logs' DefaultValue), if any. */
  readonly defaultValue?: number;
  /** The logical id of the log group it reads (when the template refers to one). */
  readonly logGroupId?: string;
}

/** The metric filters of a synthesized template's resources. */
export function templateMetricFilters(resources: Record<string, { Type: string; Properties?: any }>): TemplateMetricFilter[] {
  return Object.values(resources)
    .filter((r) => r.Type === 'AWS::Logs::MetricFilter')
    .map((r) => ({
      name: r.Properties.MetricTransformations[0].MetricName,
      pattern: r.Properties.FilterPattern,
      namespace: r.Properties.MetricTransformations[0].MetricNamespace,
      defaultValue: r.Properties.MetricTransformations[0].DefaultValue,
      logGroupId: r.Properties.LogGroupName?.Ref,
    }));
}

/**
 * The data points a metric filter publishes for these lines in one period: its value (1) for
 * each matching line, its default value (if any) for each other line (CloudWatch Logs User
 * Guide, "Creating metrics from log events using filters": a default value is published for
 * log events that do not match).
 */
export function publishedDataPoints(filter: TemplateMetricFilter, lines: readonly string[]): DataPoint[] {
  return lines.flatMap((line) => {
    const value = matchesJsonFilterPattern(filter.pattern, line) ? 1 : filter.defaultValue;
    return value === undefined ? [] : [{ namespace: filter.namespace, metricName: filter.name, value, dimensions: {} }];
  });
}
