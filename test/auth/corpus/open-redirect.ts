/**
 * Open-redirect corpus for `rd` (the return-to parameter of /oauth2/start and
 * /oauth2/refresh). Values are as the handler receives them: API Gateway (and the local
 * adapter) has percent-decoded the query string once.
 *
 * Every case states its expected answer: `refuse`, or the exact path the service
 * redirects to. The classes follow the open-redirect lists that proxies and scanners test
 * with (PayloadsAllTheThings "Open Redirect", the OWASP open-redirect cheat sheet,
 * oauth2-proxy's redirect tests): scheme-relative `//`, `/\` and `\/`, backslashes,
 * absolute and pseudo schemes (javascript:, data:, vbscript:, file:), single, double
 * and triple percent-encoding, dot-segments (the `/.//evil` class of issue 11),
 * whitespace and control characters, NUL and CRLF, unicode look-alikes (fullwidth and
 * division solidus, ideographic full stop), `@` and user-info, IP address spellings,
 * and long values. Targets are combined with every prefix trick, so each trick is tried
 * against several hosts.
 */

export type OpenRedirectExpectation = { readonly refuse: true } | { readonly path: string };

export interface OpenRedirectCase {
  /** The attack class, for the test name. */
  readonly class: string;
  readonly payload: string;
  readonly expected: OpenRedirectExpectation;
}

const REFUSE = { refuse: true } as const;

/** Hosts the attacker wants to land on, in the spellings that corpora use. */
const TARGETS = [
  'evil.example',
  'evil.example/steal?x=1',
  'evil.example:443/',
  'evil.example%2F..',
  'evil.example@gateway.invalid',
  'gateway.invalid@evil.example',
  '127.0.0.1',
  '2130706433',
  '0x7f.1',
  '[::1]',
];

/** Tricks that turn a path into another host, an ambiguous path, or no path at all. */
const PREFIXES: ReadonlyArray<readonly [string, string]> = [
  ['scheme-relative', '//'],
  ['scheme-relative', '///'],
  ['scheme-relative', '////'],
  ['backslash', '/\\'],
  ['backslash', '\\/'],
  ['backslash', '\\\\'],
  ['backslash', '/\\/'],
  ['backslash', '\\'],
  ['encoded slash', '/%2F'],
  ['encoded slash', '%2F%2F'],
  ['encoded slash', '%2f%2f'],
  ['encoded slash', '/%2f/'],
  ['encoded backslash', '/%5C'],
  ['encoded backslash', '%5C%5C'],
  ['encoded backslash', '/%5c/'],
  ['double-encoded', '/%252F'],
  ['double-encoded', '%252F%252F'],
  ['double-encoded', '/%255C'],
  ['double-encoded', '/%252e%252e//'],
  ['triple-encoded', '/%25252F'],
  ['triple-encoded', '%25252F%25252F'],
  ['quadruple-encoded', '/%2525252F'],
  ['dot-segment', '/.//'],
  ['dot-segment', '/././/'],
  ['dot-segment', '/a/..//'],
  ['dot-segment', '/a/b/../..//'],
  ['dot-segment', '/..//'],
  ['dot-segment', '/../'],
  ['dot-segment', '/./'],
  ['encoded dot-segment', '/%2e//'],
  ['encoded dot-segment', '/%2E//'],
  ['encoded dot-segment', '/%2e%2e//'],
  ['encoded dot-segment', '/a/%2e%2e//'],
  ['encoded dot-segment', '/.%2e//'],
  ['encoded dot-segment', '/%2e./'],
  ['encoded dot-segment', '/%252e//'],
  ['whitespace', '/\t/'],
  ['whitespace', '\t//'],
  ['whitespace', ' //'],
  ['whitespace', '/ /'],
  ['whitespace', '/%09/'],
  ['whitespace', '/%20/'],
  ['whitespace', '%20//'],
  ['newline', '/%0A/'],
  ['newline', '/%0D/'],
  ['newline', '/%0D%0A/'],
  ['newline', '/\n/'],
  ['NUL', '/%00/'],
  ['NUL', '%00//'],
  ['unicode look-alike', '/\uff0f'],
  ['unicode look-alike', '/%EF%BC%8F'],
  ['unicode look-alike', '/%E2%88%95'],
  ['unicode look-alike', '/%E2%81%84'],
  ['unicode look-alike', '/%EF%BC%BC'],
  ['unicode look-alike', '/%E2%A7%B8'],
  ['unicode look-alike', '/%E3%80%82/'],
  ['invisible', '/%E2%80%AE/'],
  ['invisible', '/%E2%81%A0/'],
  ['invisible', '/%E2%80%8B/'],
  ['invisible', '/%C2%A0/'],
  ['overlong UTF-8', '/%C0%AF'],
  ['overlong UTF-8', '/%E0%80%AF'],
  ['semicolon', '/;/'],
  ['semicolon', '/x;/'],
  ['no leading slash', ''],
  ['no leading slash', '@'],
  ['no leading slash', '.'],
  ['no leading slash', './/'],
];

/** Absolute URLs and pseudo-schemes, with the spellings that get past naive checks. */
const SCHEMES: readonly string[] = [
  'http://',
  'https://',
  'HTTPS://',
  'hTtPs://',
  'http:/',
  'http:',
  'https:\\\\',
  'https:/\\',
  'ftp://',
  'file://',
  'javascript:alert(1)//',
  'JaVaScRiPt:alert(1)//',
  'javascript://%0Aalert(1)//',
  'jav%09ascript:alert(1)//',
  'java%0Ascript:alert(1)//',
  '%6Aavascript:alert(1)//',
  '%20javascript:alert(1)//',
  'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==#',
  'data:text/html,<script>alert(1)</script>',
  'vbscript:msgbox(1)//',
  '/%09/javascript:alert(1)//',
];

/** Whole values from the public lists that do not fit the prefix x target pattern. */
const SINGLE_PAYLOADS: ReadonlyArray<readonly [string, string]> = [
  ['issue 11', '/.//evil.com'],
  ['issue 11', '/a/..//evil.com'],
  ['issue 11', '/%2e//evil.com'],
  ['CRLF injection', '/%0D%0ALocation:%20https://evil.example'],
  ['CRLF injection', '/%0d%0aSet-Cookie:%20x=1'],
  ['CRLF injection', '/%E5%98%8A%E5%98%8DLocation:https://evil.example'],
  ['malformed encoding', '/%'],
  ['malformed encoding', '/%E0%A4%A'],
  ['malformed encoding', '/%zz'],
  ['malformed encoding', '/%2'],
  ['non-ASCII raw', '/\u3002evil.example'],
  ['non-ASCII raw', '/caf\u00e9'],
  ['whitespace', '/x?a=/\t'],
  ['non-canonical', '/x?name="a"'],
  ['non-canonical', '/a"b'],
  ['non-canonical', '/a<b>'],
  ['non-canonical', '/a{b}'],
  ['non-canonical', '/a`b'],
  ['long', `/${'a'.repeat(2100)}`],
  ['long', `//${'a'.repeat(3000)}.example`],
  ['user-info', 'user:pass@evil.example'],
  ['user-info', 'https://gateway.invalid@evil.example'],
  ['user-info', 'https://evil.example\\@gateway.invalid'],
  ['user-info', 'https://gateway.invalid.evil.example'],
  ['IP', 'http://0177.0.0.1/'],
  ['IP', 'http://[::ffff:127.0.0.1]/'],
  ['encoded scheme', '%68%74%74%70%73%3A%2F%2Fevil.example'],
  ['encoded scheme', 'https%3A%2F%2Fevil.example'],
  ['encoded scheme', 'https%253A%252F%252Fevil.example'],
];

/** Same-origin paths, each with the exact target the service must redirect to. */
const ACCEPTED: ReadonlyArray<readonly [string, string | undefined]> = [
  ['/', undefined],
  ['/dashboards/12', undefined],
  ['/dashboards/12?filter=a', undefined],
  ['/explore/model/view?fields=a.b&f[x]=%2Fpath', undefined],
  ['/looks/3?q=a%20b#frag', undefined],
  ['/x?next=https://elsewhere.example', undefined],
  ['/x?next=//evil.example', undefined],
  ['/caf%C3%A9', undefined],
  ['/100%25', undefined],
  ['/@evil.example', undefined],
  ['/user@evil.example/x', undefined],
  ['/evil.example', undefined],
  ['/a.b/c.d', undefined],
  ['/.well-known/x', undefined],
  ['/a/..b', undefined],
  ['/a/b..', undefined],
  ['/a|b', undefined],
  ['/embed/dashboards/1?theme=dark&allow_login_screen=true', undefined],
  ['/api/4.0/queries/run/json', undefined],
  ['/x#//evil.example', undefined],
];

function generate(): OpenRedirectCase[] {
  const cases: OpenRedirectCase[] = [];
  for (const [klass, prefix] of PREFIXES) {
    for (const target of TARGETS) cases.push({ class: klass, payload: `${prefix}${target}`, expected: REFUSE });
  }
  for (const scheme of SCHEMES) {
    for (const target of TARGETS.slice(0, 3)) cases.push({ class: 'absolute or pseudo scheme', payload: `${scheme}${target}`, expected: REFUSE });
  }
  for (const [klass, payload] of SINGLE_PAYLOADS) cases.push({ class: klass, payload, expected: REFUSE });
  for (const [payload, path] of ACCEPTED) cases.push({ class: 'same-origin path', payload, expected: { path: path ?? payload } });
  return cases;
}

export const OPEN_REDIRECT_CASES: readonly OpenRedirectCase[] = dedupe(generate());

function dedupe(cases: OpenRedirectCase[]): OpenRedirectCase[] {
  const seen = new Set<string>();
  return cases.filter((c) => (seen.has(c.payload) ? false : (seen.add(c.payload), true)));
}
