/**
 * Inline refresh: a session that expired (or expires soon) with a good signature and a
 * refresh cookie is renewed by the Lua action through the auth service, within rate limits,
 * and the new token goes through the same checks as a cookie's; the response carries the
 * new cookies and is never stored by a cache.
 */
import { CLAIMS, REFRESH_COOKIE } from '../session-contract';
import { MAX_REFRESH_SET_COOKIES, REFRESH_ACTION, REFRESH_JOINS_FETCH, REFRESH_RESULTS, REFRESH_VARS } from './lua';
import { PROXY_NAMES } from './names';
import { ConfigPath, Section } from './section';
import { renderTokenChecks } from './session';
import { ResolvedGatewayOptions } from './validate';
import { GATEWAY_FILES } from '../layout';

/** The refresh rules, between the cookie's checks and the decision. */
export function renderInlineRefresh(f: Section, o: ResolvedGatewayOptions, file: ConfigPath): void {
  const s = o.session;
  const r = o.refresh;
  const kidMap = file(GATEWAY_FILES.sessionKidMap);
  f.note(
    `Expired, or expiring within ${s.refreshWindowSeconds} s, with a good signature, not revoked, at most ${r.maxExpiredSeconds} s past its exp, and\na refresh cookie: refresh inline (Lua, single flight per refresh cookie), then check the new\ntoken exactly like a cookie. A refresh whose call the auth service answers counts against\n${r.perClientAddressPerMinute} per client address and ${r.perSessionPerMinute} per sid per minute (joining a running one, being refused, or a\ncall that failed is free).`,
  );
  f.add(
    `acl session_refreshable_inline var(txn.session_exp),add(${r.maxExpiredSeconds}),sub(txn.now) -m int gt 0`,
    // The cheap, usually false, tests come first; the rest of the refresh rules only look at the result.
    'http-request set-var(txn.refresh_due) bool(1) if session_expiring refresh_cookie_present session_refreshable_inline has_session_token session_signature_valid session_exp_present session_nbf_present session_sid_present session_issuer_valid session_audience_valid !session_revoked',
    'acl refresh_due var(txn.refresh_due) -m bool',
    `http-request set-var(${REFRESH_VARS.cookie}) req.cook(${REFRESH_COOKIE}) if refresh_due`,
    `http-request unset-var(txn.refresh_due) if refresh_due !{ var(${REFRESH_VARS.cookie}) -m len 16:8192 }`,
    `http-request set-var(${REFRESH_VARS.key}) var(${REFRESH_VARS.cookie}),digest(sha256),hex if refresh_due`,
    `http-request set-var(txn.refresh_joins_flight) lua.${REFRESH_JOINS_FETCH} if refresh_due`,
    'acl refresh_joins_flight var(txn.refresh_joins_flight) -m bool',
    `http-request track-sc1 src table ${PROXY_NAMES.refreshByAddress} if refresh_due !refresh_joins_flight`,
    `http-request track-sc2 var(txn.session_sid) table ${PROXY_NAMES.refreshBySession} if refresh_due !refresh_joins_flight`,
    // Counted: calls the auth service answered. gpc0 counts calls as they start (before they
    // run, so concurrent requests cannot pass together); gpc1 takes back those that failed
    // (timeout, no connection, 5xx, API Gateway's 429). Neither requests refused here nor calls
    // that never reached the auth service count, or a browser polling through an outage of the
    // auth service or the IdP would stay locked out for as long as it polled.
    'http-request set-var(txn.refresh_failed_by_address) sc_gpc_rate(1,1) if refresh_due !refresh_joins_flight',
    'http-request set-var(txn.refresh_failed_by_session) sc_gpc_rate(1,2) if refresh_due !refresh_joins_flight',
    `http-request set-var(${REFRESH_VARS.result}) str(${REFRESH_RESULTS.rateLimited}) if refresh_due !refresh_joins_flight { sc_gpc_rate(0,1),sub(txn.refresh_failed_by_address) ge ${r.perClientAddressPerMinute} } || refresh_due !refresh_joins_flight { sc_gpc_rate(0,2),sub(txn.refresh_failed_by_session) ge ${r.perSessionPerMinute} }`,
    `http-request set-var(txn.refresh_starts_call) bool(1) if refresh_due !refresh_joins_flight !{ var(${REFRESH_VARS.result}) -m found }`,
    'acl refresh_starts_call var(txn.refresh_starts_call) -m bool',
    'http-request sc-inc-gpc(0,1) if refresh_starts_call',
    'http-request sc-inc-gpc(0,2) if refresh_starts_call',
    `http-request set-var(txn.refreshed_from_sub) var(txn.session_claims),json_query('$.${CLAIMS.subject}') if refresh_due`,
    'http-request set-var(txn.refreshed_from_sid) var(txn.session_sid) if refresh_due',
    `http-request lua.${REFRESH_ACTION} if refresh_due !{ var(${REFRESH_VARS.result}) -m found }`,
    `http-request sc-inc-gpc(1,1) if refresh_starts_call { var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.failed} }`,
    `http-request sc-inc-gpc(1,2) if refresh_starts_call { var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.failed} }`,
  );
  // The refresh took up to refresh.timeoutSeconds, and the new token's nbf is the auth
  // service's "now": read the clock again before checking it, or a refresh slower than the
  // clock skew gives a good session 401 'not valid yet'.
  f.add('http-request set-var(txn.now) date if session_refreshed');
  renderTokenChecks(f, o, kidMap, false, 'session_refreshed');
  f.note('A refresh must renew the same session: another sub or sid is refused, and its cookies are not set.').add(
    `http-request set-var(txn.session_sub) var(txn.session_claims),json_query('$.${CLAIMS.subject}') if session_refreshed`,
    `http-request set-var(${REFRESH_VARS.result}) str(${REFRESH_RESULTS.mismatch}) if session_refreshed !{ var(txn.session_sid),strcmp(txn.refreshed_from_sid) eq 0 } || session_refreshed !{ var(txn.session_sub),strcmp(txn.refreshed_from_sub) eq 0 }`,
    `acl refresh_mismatch var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.mismatch}`,
    'http-request unset-var(txn.session_signature) if refresh_mismatch',
  );
}

/** The refreshed cookies on the response, and no caching of an answer that sets them. */
export function renderRefreshedCookies(f: Section): void {
  const setsCookies = `{ var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.refreshed} } { var(${REFRESH_VARS.setCookiePrefix}1) -m found }`;
  for (let n = 1; n <= MAX_REFRESH_SET_COOKIES; n += 1) {
    const variable = `${REFRESH_VARS.setCookiePrefix}${n}`;
    f.add(
      `http-after-response add-header Set-Cookie %[var(${variable})] if { var(${REFRESH_VARS.result}) -m str ${REFRESH_RESULTS.refreshed} } { var(${variable}) -m found }`,
    );
  }
  f.add(`http-after-response set-header Cache-Control no-store if ${setsCookies}`, `http-after-response add-header Vary Cookie if ${setsCookies}`);
}
