/**
 * The session: the gateway's cookies read into variables, the token's signature and claims
 * checked (and remembered in the verification cache), the decision, the identity headers
 * of a valid session, and the answer to everything else (login redirect or 401 JSON).
 */
import { SIGNING_KEY_STATUSES } from '../key-material';
import { GATEWAY_FILES } from '../layout';
import {
  ASSERTION_COOKIE,
  ASSERTION_TOKEN_TYPE,
  AUTH_METHODS,
  AUTH_PATHS,
  CLAIMS,
  HEADERS,
  REFRESH_COOKIE,
  RETURN_TO_PARAM,
  SESSION_ALGORITHMS,
  SESSION_COOKIE,
  SESSION_TOKEN_TYPE,
  assertionAudience,
  attributeClaim,
  attributeHeader,
} from '../session-contract';
import { upstreamCookieRules } from './hygiene';
import { DECISIONS, NO_LOOKER_SERVER_REASON } from './logging';
import { REFRESH_RESULTS, REFRESH_VARS } from './lua';
import { PROXY_NAMES, RENDERED_FILES } from './names';
import { ConfigPath, jsonError, Section, words } from './section';
import { ResolvedGatewayOptions } from './validate';

/** The revoked-session map file: HAProxy needs the file to exist; the Lua poll fills the map in memory. */
export function renderRevokedSessionMap(): string {
  return '# <sid> <until, epoch seconds>: filled in memory by the Lua revocation poll (core.set_map), never on disk.\n';
}

/** 4. The gateway's cookies, read once each. */
export function renderSessionCookies(f: Section, o: ResolvedGatewayOptions): void {
  const s = o.session;
  f.note(
    `4. The gateway's cookies: read into variables here, and taken out of the Cookie header that\nLooker receives just before a request is let through (below), while Looker's own cookies\npass untouched. The refresh cookie is only read when a refresh is due (each cookie read\nwalks the whole header).`,
  ).add(
    `http-request set-var(txn.session_cookie_count) req.cook_cnt(${SESSION_COOKIE})`,
    // Each req.cook walks the whole Cookie header: read each cookie once, then check the
    // variable's length (a token of the wrong length is dropped as if it was never sent).
    `http-request set-var(txn.session_token) req.cook(${SESSION_COOKIE}) if { var(txn.session_cookie_count) -m int eq 1 }`,
    `http-request unset-var(txn.session_token) if !{ var(txn.session_token) -m len 16:${s.maxTokenBytes} }`,
    `http-request set-var(${REFRESH_VARS.assertion}) req.cook(${ASSERTION_COOKIE})`,
    `http-request unset-var(${REFRESH_VARS.assertion}) if !{ var(${REFRESH_VARS.assertion}) -m len 16:${s.maxTokenBytes} }`,
    `acl refresh_cookie_present req.cook_cnt(${REFRESH_COOKIE}) -m int eq 1`,
  );
}

/** The session's ACLs, the key preload and the token checks of the cookie's token. */
export function renderSessionChecks(f: Section, o: ResolvedGatewayOptions, file: ConfigPath, sectionNumber: string): void {
  const s = o.session;
  const revokedMap = file(RENDERED_FILES.revokedSessionMap);
  f.note(
    `${sectionNumber}. The session. Its token sits in txn.session_token, which the cookie fills and the inline\nrefresh replaces, so both go through the same checks. jwt_verify checks only the\nsignature, with the algorithm pinned: one check per algorithm the gateway signs with\n(${SESSION_ALGORITHMS.join(', ')}), the token's header picking which runs; the key is picked by kid\nthrough the kid map, and a key verifies only signatures of its own algorithm. Both are\naccepted so that a change of algorithm needs no new configuration: the new keys arrive\nas 'next' through key-sync a whole rotation before they sign. Its upstream assertion\n(txn.assertion_token, a token of its own) must be signed by the same key and carry the\nsame sub and sid; it is forwarded only when it is valid.`,
  );
  f.add(
    'http-request set-var(txn.now) date',
    'acl has_session_token var(txn.session_token) -m found',
    `acl has_assertion_token var(${REFRESH_VARS.assertion}) -m found`,
    'acl session_key_known var(txn.session_key) -m found',
    'acl session_signature_valid var(txn.session_signature) -m int 1',
    ...SESSION_ALGORITHMS.map((alg) => `acl ${signedWith(alg)} var(txn.session_alg) -m str ${alg}`),
    'acl session_cache_hit var(txn.session_cached) -m int ge 1',
    'acl session_exp_present var(txn.session_exp) -m found',
    'acl session_nbf_present var(txn.session_nbf) -m found',
    'acl session_sid_present var(txn.session_sid) -m found',
    `acl session_expired var(txn.session_exp),add(${s.clockSkewSeconds}),sub(txn.now) -m int le 0`,
    `acl session_expiring var(txn.session_exp),sub(${s.refreshWindowSeconds}),sub(txn.now) -m int le 0`,
    `acl session_not_yet_valid var(txn.session_nbf),sub(${s.clockSkewSeconds}),sub(txn.now) -m int gt 0`,
    `acl session_issuer_valid var(txn.session_claims),json_query('$.${CLAIMS.issuer}') -m str ${s.issuer}`,
    `acl session_audience_valid var(txn.session_claims),json_query('$.${CLAIMS.audience}') -m str ${s.audience}`,
    `acl session_revoked var(txn.session_sid),map(${revokedMap}) -m found`,
    `acl assertion_valid var(txn.assertion_exp),add(${s.clockSkewSeconds}),sub(txn.now) -m int gt 0`,
    `acl session_refreshed var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.refreshed}`,
  );
  f.note(
    'Key preload. jwt_verify loads a key file only when the config is parsed, and only a file it\nnames literally: the checks below pick the key by kid through a variable, which names no\nfile, and a key never loaded fails every token with -5 (unknown key). These rules never run\n(`if FALSE`); they only name each slot file so that HAProxy loads it, whatever kind of key it\nholds (loading does not depend on the algorithm named). key-sync rewrites the slot files and\nreloads: the names never change.',
  );
  for (const slot of SIGNING_KEY_STATUSES) {
    f.add(`http-request set-var(txn.key_slot_loaded) str(x),jwt_verify("${SESSION_ALGORITHMS[0]}","${file(GATEWAY_FILES.sessionKey(slot))}") if FALSE`);
  }
  renderTokenChecks(f, o, file(GATEWAY_FILES.sessionKidMap), s.verificationCache, '');
}

/** The decision, and the identity headers of a valid session that is let through. */
export function renderValidSession(f: Section, o: ResolvedGatewayOptions): void {
  const s = o.session;
  f.note('The decision. A valid session takes the short path and leaves the rules with `allow`.').add(
    'acl decided var(txn.decision) -m found',
    'http-request set-var(txn.session_valid) bool(1) if session_signature_valid session_exp_present session_nbf_present session_sid_present !session_expired !session_not_yet_valid session_issuer_valid session_audience_valid !session_revoked',
    'acl session_valid var(txn.session_valid) -m bool',
  );
  // Allowed requests get a decision and no reason (as machine-allowed and auth-route): the
  // reason says why a request was refused, and three set-var-fmt rules cost 1% of a request.
  f.add(
    `http-request set-var(txn.decision) str(${DECISIONS.sessionRefreshed}) if session_valid session_refreshed`,
    `http-request set-var(txn.decision) str(${DECISIONS.cacheHit}) if session_valid session_cache_hit !decided`,
    `http-request set-var(txn.decision) str(${DECISIONS.sessionValid}) if session_valid !decided`,
  );

  f.note('Valid: identity headers from the verified claims.');
  const claim = (name: string) => `var(txn.session_claims),json_query('$.${name}')`;
  f.add(
    `http-request set-var(txn.user) ${claim(s.userClaim)} if session_valid`,
    `http-request set-var(txn.auth_method) str(${AUTH_METHODS.session}) if session_valid`,
    `http-request add-header ${HEADERS.user} %[var(txn.user)] if session_valid { var(txn.user) -m found }`,
  );
  const claimHeaders: Array<[string, string]> = [
    [HEADERS.email, CLAIMS.email],
    [HEADERS.groups, CLAIMS.groupsCsv],
    [HEADERS.roles, CLAIMS.rolesCsv],
    ...s.attributeNames.map((name): [string, string] => [attributeHeader(name), attributeClaim(name)]),
  ];
  for (const [header, name] of claimHeaders) {
    const variable = `txn.claim_${name}`;
    f.add(
      `http-request set-var(${variable}) ${claim(name)} if session_valid`,
      `http-request add-header ${header} %[var(${variable})] if session_valid { var(${variable}) -m found }`,
    );
  }
  f.add(
    `http-request add-header ${HEADERS.assertion} %[var(${REFRESH_VARS.assertion})] if session_valid assertion_valid`,
    `http-request add-header ${HEADERS.authMethod} ${AUTH_METHODS.session} if session_valid`,
  );
  f.note(`No Looker node up: say so in JSON rather than queueing, with the code ${DECISIONS.lookerUnavailable} that the alarm counts.`).add(
    `http-request set-var(txn.decision) str(${DECISIONS.lookerUnavailable}) if session_valid { nbsrv(${PROXY_NAMES.looker}) lt 1 }`,
    `http-request set-var-fmt(txn.reason) "${NO_LOOKER_SERVER_REASON}" if session_valid { nbsrv(${PROXY_NAMES.looker}) lt 1 }`,
    `http-request return status 503 content-type application/json hdr Cache-Control no-store hdr Retry-After 5 lf-string '{"error":"service_unavailable","code":"${DECISIONS.lookerUnavailable}","reason":"%[var(txn.reason)]","requestId":"%[unique-id]"}' if session_valid { nbsrv(${PROXY_NAMES.looker}) lt 1 }`,
    ...upstreamCookieRules('session_valid'),
    'http-request allow if session_valid',
  );
}

/** Not valid: the reason (first match wins), then a login redirect for a navigation or 401 JSON. */
export function renderDenial(f: Section, o: ResolvedGatewayOptions): void {
  const r = o.refresh;
  const decide = (decision: string, reason: string, condition: string) =>
    f.add(
      `http-request set-var(txn.decision) str(${decision}) if !decided ${condition}`,
      `http-request set-var-fmt(txn.reason) "${reason}" if { var(txn.decision) -m str ${decision} } !{ var(txn.reason) -m found }`,
    );
  f.note('Not valid: say why (the first matching rule wins).');
  decide(DECISIONS.noSession, 'no session cookie', '{ var(txn.session_cookie_count) -m int eq 0 }');
  decide(DECISIONS.malformedSession, 'more than one session cookie', '{ var(txn.session_cookie_count) -m int gt 1 }');
  decide(DECISIONS.malformedSession, 'session cookie too short or too long', '!has_session_token');
  decide(DECISIONS.unknownKey, 'session signed by an unknown key', `{ var(txn.session_token),jwt_header_query('$.kid') -m found } !session_key_known`);
  decide(DECISIONS.refreshRefused, 'the refreshed session has another sub or sid', 'refresh_mismatch');
  decide(DECISIONS.badClaims, `the token is not a session token (typ is not ${SESSION_TOKEN_TYPE})`, '{ var(txn.session_type_wrong) -m bool }');
  decide(DECISIONS.badSignature, 'session signature is invalid', '!session_signature_valid');
  decide(DECISIONS.sessionRevoked, 'session revoked (logged out)', 'session_revoked');
  decide(
    DECISIONS.refreshRefused,
    'too many inline refreshes for this session or client address',
    `{ var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.rateLimited} }`,
  );
  decide(DECISIONS.refreshRefused, 'too many inline refreshes running on this gateway', `{ var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.busy} }`);
  decide(DECISIONS.refreshRefused, 'session expired and could not be refreshed', `session_expired { var(${REFRESH_VARS.result}) -m found }`);
  decide(
    DECISIONS.expired,
    `session expired more than ${r.maxExpiredSeconds} s ago: refreshed by a page load only`,
    'session_expired refresh_cookie_present !session_refreshable_inline',
  );
  decide(DECISIONS.expired, 'session expired', 'session_expired');
  decide(DECISIONS.badClaims, 'session has no exp, nbf or sid claim', '!session_exp_present || !decided !session_nbf_present || !decided !session_sid_present');
  decide(DECISIONS.notYetValid, 'session is not valid yet', 'session_not_yet_valid');
  decide(DECISIONS.badClaims, 'session issuer or audience is wrong', 'TRUE');

  f.note(
    'Denied: a browser navigation goes to the login, anything else (XHR, fetch, API, non-GET)\ngets 401 JSON. Sec-Fetch-* headers decide when present, else Accept: text/html on GET/HEAD.\nA navigation whose session is still good but could not be refreshed inline (too old, too\nmany refreshes) goes to the navigation refresh instead, which needs no login.',
  ).add(
    'acl is_get_or_head method GET HEAD',
    'acl is_xhr req.hdr(x-requested-with) -m found',
    'acl has_fetch_metadata req.hdr(sec-fetch-mode) -m found',
    'acl fetch_navigates req.hdr(sec-fetch-mode) -i navigate',
    'acl fetch_wants_document req.hdr(sec-fetch-dest) -i document',
    'acl accepts_html req.fhdr(accept) -m sub -i text/html',
    'http-request set-var(txn.navigation) bool(1) if is_get_or_head !is_xhr !is_api_path has_fetch_metadata fetch_navigates || is_get_or_head !is_xhr !is_api_path has_fetch_metadata fetch_wants_document || is_get_or_head !is_xhr !is_api_path !has_fetch_metadata accepts_html',
    'acl is_navigation var(txn.navigation) -m bool',
    `acl refresh_by_navigation var(txn.decision) -m str ${DECISIONS.expired} ${DECISIONS.refreshRefused}`,
    `http-request redirect location ${AUTH_PATHS.refresh}?${RETURN_TO_PARAM}=%[pathq,url_enc] code 302 if is_navigation refresh_cookie_present refresh_by_navigation !{ var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.refused} ${REFRESH_RESULTS.mismatch} }`,
    `http-request redirect location ${AUTH_PATHS.start}?${RETURN_TO_PARAM}=%[pathq,url_enc] code 302 if is_navigation`,
    `http-request return status 401 content-type application/json hdr Cache-Control no-store lf-string ${jsonError('unauthorized', '%[var(txn.reason)]')}`,
  );
}

/** The ACL that is true when the session token's header names `alg`. */
function signedWith(alg: string): string {
  return `session_signed_${alg.toLowerCase()}`;
}

/**
 * The session token's signature and claims, and its upstream assertion. With the cache, the
 * pair (session, assertion) is looked up by the SHA-256 of both: an entry means the session's
 * signature and type were good, and its value is 1 (no usable assertion) or the assertion's
 * exp (the assertion's signature, type, audience, issuer, sub and sid were good for this very
 * session). exp, nbf, iss, aud, the kid and the revocation list are still checked on every
 * request. `onlyIf` gates the whole block (the refreshed token: no cache).
 */
export function renderTokenChecks(f: Section, o: ResolvedGatewayOptions, kidMap: string, cache: boolean, onlyIf: string): void {
  const s = o.session;
  const when = (condition: string) => ` if ${words(onlyIf, condition)}`;
  const checksNow = cache ? 'session_signature_valid !session_cache_hit' : 'session_signature_valid';
  if (onlyIf) {
    f.note('The refreshed token: the same checks (not cached).');
    for (const variable of [
      'session_key',
      'session_alg',
      'session_signature',
      'session_cached',
      'session_type_wrong',
      'session_claims',
      'session_exp',
      'session_nbf',
      'session_sid',
      'assertion_signature',
      'assertion_claims',
      'assertion_exp',
    ]) {
      f.add(`http-request unset-var(txn.${variable})${when('')}`);
    }
  }
  f.add(`http-request set-var(txn.session_key) var(txn.session_token),jwt_header_query('$.kid'),map(${kidMap})${when('has_session_token')}`);
  if (cache) {
    f.add(
      // "|" is in neither token's alphabet, so the pair has one spelling.
      `http-request set-var(txn.session_digest) var(txn.session_token),concat(|,${REFRESH_VARS.assertion}),digest(sha256)${when('has_session_token session_key_known')}`,
      `http-request set-var(txn.session_cached) var(txn.session_digest),table_gpt0(${PROXY_NAMES.sessionCache})${when('has_session_token session_key_known')}`,
      `http-request set-var(txn.session_signature) int(1)${when('session_key_known session_cache_hit')}`,
    );
  }
  const verify = cache ? 'session_key_known !session_cache_hit' : 'session_key_known';
  f.add(`http-request set-var(txn.session_alg) var(txn.session_token),jwt_header_query('$.alg')${when(verify)}`);
  for (const alg of SESSION_ALGORITHMS) {
    f.add(`http-request set-var(txn.session_signature) var(txn.session_token),jwt_verify("${alg}",txn.session_key)${when(`${verify} ${signedWith(alg)}`)}`);
  }
  f.add(
    // An upstream assertion (or any other token type) is never a session, whatever its audience.
    `http-request set-var(txn.session_type_wrong) bool(1)${when(`${checksNow} !{ var(txn.session_token),jwt_header_query('$.typ') -m str ${SESSION_TOKEN_TYPE} }`)}`,
    `http-request unset-var(txn.session_signature)${when('{ var(txn.session_type_wrong) -m bool }')}`,
    // Claims are read only once the signature passed; the payload is decoded once here
    // rather than by one jwt_payload_query per claim (base64 decoding was a visible cost).
    // concat() turns the decoded bytes into a string once; json_query would otherwise cast
    // the binary payload to a string again on each call.
    `http-request set-var(txn.session_claims) var(txn.session_token),field(2,.),ub64dec,concat()${when('session_signature_valid')}`,
    `http-request set-var(txn.session_exp) var(txn.session_claims),json_query('$.${CLAIMS.expiresAt}','int')${when('session_signature_valid')}`,
    `http-request set-var(txn.session_nbf) var(txn.session_claims),json_query('$.${CLAIMS.notBefore}','int')${when('session_signature_valid')}`,
    `http-request set-var(txn.session_sid) var(txn.session_claims),json_query('$.${CLAIMS.sessionId}')${when('session_signature_valid')}`,
  );
  const assertionNow = `has_assertion_token ${checksNow}`;
  const assertion = (name: string) => `var(txn.assertion_claims),json_query('$.${name}')`;
  f.add(
    // The assertion is signed by the session's key, so with the session's (pinned) algorithm.
    ...SESSION_ALGORITHMS.map(
      (alg) =>
        `http-request set-var(txn.assertion_signature) var(${REFRESH_VARS.assertion}),jwt_verify("${alg}",txn.session_key)${when(`${assertionNow} ${signedWith(alg)}`)}`,
    ),
    `http-request set-var(txn.assertion_claims) var(${REFRESH_VARS.assertion}),field(2,.),ub64dec,concat()${when(`${assertionNow} { var(txn.assertion_signature) -m int 1 }`)}`,
    `http-request set-var(txn.session_sub) var(txn.session_claims),json_query('$.${CLAIMS.subject}')${when(`${assertionNow} { var(txn.assertion_claims) -m found }`)}`,
    `http-request set-var(txn.assertion_exp) var(txn.assertion_claims),json_query('$.${CLAIMS.expiresAt}','int')${when(
      [
        `${assertionNow} { var(txn.assertion_claims) -m found }`,
        `{ var(${REFRESH_VARS.assertion}),jwt_header_query('$.typ') -m str ${ASSERTION_TOKEN_TYPE} }`,
        `{ ${assertion(CLAIMS.audience)} -m str ${assertionAudience(s.audience)} }`,
        `{ ${assertion(CLAIMS.issuer)} -m str ${s.issuer} }`,
        `{ ${assertion(CLAIMS.subject)},strcmp(txn.session_sub) eq 0 }`,
        `{ ${assertion(CLAIMS.sessionId)},strcmp(txn.session_sid) eq 0 }`,
      ].join(' '),
    )}`,
  );
  if (cache) {
    f.add(
      `http-request track-sc0 var(txn.session_digest) table ${PROXY_NAMES.sessionCache}${when(checksNow)}`,
      `http-request sc-set-gpt0(0) 1${when(`${checksNow} !{ var(txn.assertion_exp) -m found }`)}`,
      `http-request sc-set-gpt0(0) var(txn.assertion_exp)${when(`${checksNow} { var(txn.assertion_exp) -m int gt 1 }`)}`,
      `http-request set-var(txn.assertion_exp) var(txn.session_cached)${when('session_cache_hit { var(txn.session_cached) -m int gt 1 }')}`,
    );
  }
}
