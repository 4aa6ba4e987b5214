/**
 * Structured logging: one JSON line per audit decision, and operational log lines.
 * Lambda ships stdout to CloudWatch Logs, where metric filters read these fields.
 * Callers pass facts, never tokens, codes, cookies or secrets; as a second line of
 * defence, any string that looks like a JWS/JWE is replaced before writing.
 */

/** The `looker-*` events are broker mode's (the gateway as Looker's OpenID provider). */
export type AuditEventName = 'login' | 'refresh' | 'deny' | 'logout' | 'error' | 'looker-authorize' | 'looker-token' | 'looker-userinfo';
export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditEvent {
  readonly event: AuditEventName;
  readonly outcome: AuditOutcome;
  /** Machine-readable reason, e.g. `no-rule-matched`, `state-mismatch`, `idp-timeout`. */
  readonly reason: string;
  readonly requestId: string;
  readonly route: string;
  readonly status: number;
  readonly user?: { readonly sub?: string; readonly email?: string };
  readonly sessionId?: string;
  readonly matchedRules?: readonly string[];
  readonly roles?: readonly string[];
  readonly groups?: readonly string[];
  readonly attributes?: Readonly<Record<string, string>>;
  readonly sourceIp?: string;
  /** A sentence for people reading the log. */
  readonly detail?: string;
}

/** Where log lines go. The Lambda writes to stdout; tests capture lines. */
export interface LogSink {
  write(line: string): void;
}

export const stdoutSink: LogSink = {
  write(line: string): void {
    process.stdout.write(`${line}\n`);
  },
};

/** Three base64url segments (JWS) or five (JWE): never written to a log. */
const TOKEN_LIKE = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})?/g;

function scrub(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(TOKEN_LIKE, '[redacted-token]');
  if (Array.isArray(value)) return value.map(scrub);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrub(v)]));
  return value;
}

export class Logger {
  constructor(
    private readonly sink: LogSink = stdoutSink,
    private readonly service = 'auth',
  ) {}

  audit(event: AuditEvent): void {
    this.sink.write(JSON.stringify(scrub({ type: 'audit', time: new Date().toISOString(), service: this.service, ...event })));
  }

  log(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
    this.sink.write(JSON.stringify(scrub({ type: 'log', level, time: new Date().toISOString(), service: this.service, message, ...fields })));
  }
}
