/**
 * Request hygiene, before any routing decision: identity headers a client sends are deleted,
 * the path is normalized (or refused when it stays ambiguous), a request with two Cookie
 * lines is refused, and the gateway's own cookies never reach Looker.
 */
import { GATEWAY_COOKIES, HEADERS } from '../session-contract';
import { DECISIONS } from './logging';
import { AMBIGUOUS_PATH_REASONS } from './paths';
import { escapeRegex, refuse, Section } from './section';
import { ResolvedGatewayOptions } from './validate';

/** Request headers deleted from every client request before anything else (exact names). */
export const DEFAULT_STRIPPED_HEADERS: readonly string[] = [
  HEADERS.requestId,
  HEADERS.assertion,
  HEADERS.authMethod,
  'Forwarded',
  'X-Real-IP',
  'X-Remote-User',
  'Remote-User',
  'X-Original-URL',
  'X-Rewrite-URL',
];

/**
 * Header name prefixes deleted from every client request: all `X-Forwarded-*` (user,
 * email, groups, and the For/Proto/Host the gateway sets itself), all `X-Looker-*`
 * (roles and every `X-Looker-Attr-*`), all `X-Gateway-*`, and oauth2-proxy's `X-Auth-Request-*`.
 */
export const DEFAULT_STRIPPED_HEADER_PREFIXES: readonly string[] = ['X-Forwarded-', 'X-Looker-', 'X-Gateway-', 'X-Auth-Request-'];

/** `^(?i)(?:name|name|prefix.*)$`: the header names (and prefixes) hygiene deletes, as one regex, `-` and `_` alike. */
export function strippedHeaderRegex(names: readonly string[], prefixes: readonly string[]): string {
  // "-" and "_" alike: a server that folds one into the other would take X_Looker_Roles for X-Looker-Roles.
  const pattern = (value: string) => escapeRegex(value.toLowerCase()).replace(/[-_]/g, '[-_]');
  const alternatives = [...names.map(pattern), ...prefixes.map((prefix) => `${pattern(prefix)}.*`)];
  return `^(?i)(?:${alternatives.join('|')})$`;
}

/** 1. Every identity header a client sent is deleted; then the headers the gateway sets itself. */
export function renderHeaderHygiene(f: Section, o: ResolvedGatewayOptions, hasMachineRoutes: boolean): void {
  const strippedNames = [...DEFAULT_STRIPPED_HEADERS, ...o.strippedHeaders];
  const strippedPrefixes = [...DEFAULT_STRIPPED_HEADER_PREFIXES, ...o.strippedHeaderPrefixes];
  const protectedHeaders = strippedHeaderRegex(strippedNames, strippedPrefixes);
  f.note(
    `1. Header hygiene first: no identity header a client sends survives. One case-insensitive\nregex over the header names (one pass) deletes these names:\n  ${strippedNames.join(', ')}\nand every name starting with:\n  ${strippedPrefixes.join(', ')}\nwith "_" and "-" alike (X_Looker_Roles, x_forwarded_user): servers that fold "_" into "-"\n(Rack, CGI) would read them as the real header.`,
  );
  f.add(`http-request del-header ${protectedHeaders} -m reg`);
  f.note('A Connection header that names one of them would make the next hop drop the header the\ngateway sets (hop-by-hop): refused.').add(
    `acl connection_names_protected_header req.hdr(connection) -m reg ${protectedHeaders}`,
  );
  refuse(f, 400, 'bad_request', DECISIONS.badRequest, 'the Connection header names a protected header', 'connection_names_protected_header');
  // Every header the gateway sets on the request was deleted just above, so `add-header`
  // (no search for an old value) does what `set-header` would, for less.
  f.add(
    '',
    'http-request set-var(txn.host) req.hdr(host)',
    'http-request add-header X-Forwarded-For %[src]',
    'http-request add-header X-Forwarded-Proto https',
    'http-request add-header X-Forwarded-Host %[var(txn.host)] if { var(txn.host) -m found }',
    'http-request set-var(txn.request_id) unique-id',
    `http-request add-header ${HEADERS.requestId} %[var(txn.request_id)]`,
    'http-request set-var(txn.route) str(looker)',
  );
  if (hasMachineRoutes) {
    f.add(
      'http-request set-var(txn.client_cert_sha256) ssl_c_der,sha2(256),hex,lower if { ssl_c_used }',
      'http-request set-var(txn.client_cert_subject) ssl_c_s_dn if { ssl_c_used }',
    );
  }
}

/** 2. The path, normalized before any routing decision; what stays ambiguous is refused. */
export function renderPathNormalization(f: Section): void {
  f.note(
    '2. The path, normalized before any routing decision, so that a route (machine policy, the\nauth service, API paths) is chosen on the path Looker receives: escapes of unreserved\ncharacters decoded (%2e, %71), the others upper case, "." and ".." segments removed, "//"\nmerged. What would still read differently behind the gateway is refused (400). A path\nwithout "%", "/.", "//", ";" or a backslash is already normal: the usual path skips all of it.',
  ).add(
    'http-request set-var(txn.path_unusual) bool(1) if { path -m sub % /. // ; \\\\ }',
    'acl path_is_unusual var(txn.path_unusual) -m bool',
    'acl path_has_bad_escape path -m reg %(?![0-9A-Fa-f]{2})',
    'acl path_has_encoded_separator path -m sub -i %2F %5C %25 %00 %C0 %C1',
    'acl path_has_parameters path -m sub ; \\\\',
  );
  refuse(f, 400, 'bad_request', DECISIONS.badRequest, AMBIGUOUS_PATH_REASONS.badEscape, 'path_is_unusual path_has_bad_escape');
  // `strict` because HAProxy 3.0.11 ignores these two normalizers when they have a condition
  // but no `strict` (measured); bad escapes were refused just above, so strict never fires.
  f.add(
    'http-request normalize-uri percent-decode-unreserved strict if path_is_unusual',
    'http-request normalize-uri percent-to-uppercase strict if path_is_unusual',
    'http-request normalize-uri path-strip-dot if path_is_unusual',
    'http-request normalize-uri path-strip-dotdot full if path_is_unusual',
    'http-request normalize-uri path-merge-slashes if path_is_unusual',
  );
  refuse(f, 400, 'bad_request', DECISIONS.badRequest, AMBIGUOUS_PATH_REASONS.encodedSeparator, 'path_is_unusual path_has_encoded_separator');
  refuse(f, 400, 'bad_request', DECISIONS.badRequest, AMBIGUOUS_PATH_REASONS.parameters, 'path_is_unusual path_has_parameters');
}

/** One Cookie line per request. */
export function renderCookieLineCheck(f: Section): void {
  f.note(
    'RFC 6265: one Cookie line per request. Two lines could hide a second session cookie. Lines,\nnot values: a comma inside a cookie value is not a second line.',
  ).add('acl has_two_cookie_lines req.fhdr_cnt(cookie) gt 1');
  refuse(f, 400, 'bad_request', DECISIONS.malformedSession, 'more than one Cookie header line', 'has_two_cookie_lines');
}

/**
 * The Cookie header Looker receives: the client's, without the gateway's cookies. HAProxy
 * reads a cookie after "," as well as ";" and skips spaces and tabs around its name and
 * before "=", so the strip takes out every spelling it could have read, and more (any case,
 * any whitespace): no cookie read as the session can reach Looker. Two Cookie lines were
 * refused earlier, so there is at most one here (none: no variable, no header).
 */
export function upstreamCookieRules(condition: string): string[] {
  const gatewayCookies = `(${GATEWAY_COOKIES.map(escapeRegex).join('|')})`;
  return [
    `http-request set-var(txn.upstream_cookie) "req.fhdr(cookie),regsub('(^|[;,])[[:space:]]*${gatewayCookies}[[:space:]]*=[^;,]*','',ig),regsub('^[;,[:space:]]+','')" if ${condition}`,
    `http-request del-header Cookie if ${condition}`,
    `http-request add-header Cookie %[var(txn.upstream_cookie)] if ${condition} { var(txn.upstream_cookie) -m len 1:100000 }`,
  ];
}

/**
 * The Cookie header the auth service receives: the gateway's own cookies only, rebuilt from
 * their values, so Looker's cookies (often several kilobytes) never count against API
 * Gateway's 10,240-byte limit on request headers ("Amazon API Gateway quotas": a larger
 * header is refused before the auth service sees the request) and never reach a service that
 * has no use for them. One line, as RFC 6265 sends it; none when the browser sent none of them.
 */
export function authServiceCookieRules(condition: string): string[] {
  return [
    ...GATEWAY_COOKIES.map(
      (name) =>
        `http-request set-var-fmt(txn.auth_cookie) "%[var(txn.auth_cookie)]; ${name}=%[req.cook(${name})]" if ${condition} { req.cook_cnt(${name}) -m int gt 0 }`,
    ),
    `http-request del-header Cookie if ${condition}`,
    `http-request add-header Cookie "%[var(txn.auth_cookie),regsub('^; ','')]" if ${condition} { var(txn.auth_cookie) -m found }`,
  ];
}
