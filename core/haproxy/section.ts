/**
 * The building blocks every part of haproxy.cfg is written with: a section that keeps its
 * "why" comments next to its directives, and the small helpers for rule text.
 */

/** Turns a path relative to the config directory into the absolute path haproxy.cfg names. */
export type ConfigPath = (relative: string) => string;

/** Renders an ACL/flag list the way HAProxy reads it: one space between words. */
export function words(...parts: Array<string | false | undefined>): string {
  return parts.filter((part): part is string => typeof part === 'string' && part.length > 0).join(' ');
}

export function escapeRegex(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, (c) => `\\${c}`);
}

/** A JSON error body as an `lf-string` (reason and request id filled in at run time). */
export function jsonError(error: string, reasonExpr: string): string {
  return `'{"error":"${error}","reason":"${reasonExpr}","requestId":"%[unique-id]"}'`;
}

export class Section {
  private readonly lines: string[] = [];
  constructor(header: string, why?: string) {
    if (why) for (const line of why.split('\n')) this.lines.push(`# ${line}`);
    this.lines.push(header);
  }
  /** A directive line, indented. */
  add(...lines: string[]): this {
    for (const line of lines) this.lines.push(line === '' ? '' : `  ${line}`);
    return this;
  }
  /** A comment saying why the next lines exist. */
  note(text: string): this {
    this.lines.push('');
    for (const line of text.split('\n')) this.lines.push(`  # ${line}`);
    return this;
  }
  toString(): string {
    return this.lines.join('\n');
  }
}

/** ACL lines matching paths under each prefix on a segment boundary: `/a/b` covers `/a/b` and `/a/b/c`, never `/a/bc`. */
export function pathPrefixAcl(name: string, prefixes: readonly string[]): string[] {
  const closed = prefixes.filter((prefix) => !prefix.endsWith('/'));
  const starts = prefixes.map((prefix) => (prefix.endsWith('/') ? prefix : `${prefix}/`));
  return [`acl ${name} path_beg ${starts.join(' ')}`, ...(closed.length > 0 ? [`acl ${name} path ${closed.join(' ')}`] : [])];
}

/** Sets the decision and reason, then answers `status` with a JSON error body, all under `condition`. */
export function refuse(f: Section, status: number, error: string, decision: string, reason: string, condition: string): void {
  f.add(
    `http-request set-var(txn.decision) str(${decision}) if ${condition}`,
    `http-request set-var-fmt(txn.reason) "${reason}" if ${condition}`,
    `http-request return status ${status} content-type application/json hdr Cache-Control no-store lf-string ${jsonError(error, '%[var(txn.reason)]')} if ${condition}`,
  );
}
