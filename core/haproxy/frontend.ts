/**
 * The public listener, in the order HAProxy runs its rules: routes, hygiene, the auth
 * service's paths, the gateway's cookies, machine clients, the session and its inline
 * refresh, the decision, and the response headers.
 */
import { LOOKER_BROKER_DISCOVERY_PATHS } from '../auth/looker-broker';
import { AUTH_PATH_PREFIX, AUTH_PATHS, HEADERS } from '../session-contract';
import { authServiceCookieRules, renderCookieLineCheck, renderHeaderHygiene, renderPathNormalization } from './hygiene';
import { DECISIONS } from './logging';
import { hasMachineRoutes, renderMachineRules, tlsBind, usesMachineHostCrtList } from './machine-clients';
import { PROXY_NAMES } from './names';
import { renderInlineRefresh, renderRefreshedCookies } from './refresh';
import { ConfigPath, jsonError, pathPrefixAcl, refuse, Section } from './section';
import { renderDenial, renderSessionChecks, renderSessionCookies, renderValidSession } from './session';
import { ResolvedGatewayOptions } from './validate';

export function renderGatewayFrontend(o: ResolvedGatewayOptions, file: ConfigPath): Section {
  const machine = hasMachineRoutes(o);
  const f = new Section(`frontend ${PROXY_NAMES.gateway}`, 'The public listener: every request is checked here before it reaches Looker.');
  f.add(tlsBind(o, file));
  f.note("Looker runs long queries: a browser may wait an hour for an answer (websockets: Looker's backend).").add(
    `timeout client ${o.looker.timeoutSeconds}s`,
  );
  if (o.listener.maxconn !== undefined) f.add(`maxconn ${o.listener.maxconn}`);
  if (usesMachineHostCrtList(o)) {
    f.note(
      `Client certificates are asked for only on ${o.machineRoutes.hostName} (crt-list), and optional at the\nhandshake there, so a bad one does not abort it: the machine-route rules below decide.`,
    );
  } else if (machine) {
    f.note(
      'Client certificates are asked for but optional at the handshake, so a bad one does not\nabort it: the machine-route rules below decide (ssl_c_verify is 0 without a certificate,\nso it is always paired with ssl_c_used).',
    );
  }

  f.note('Routes, on the normalized path (section 2) and on segment boundaries: /a/b covers /a/b and\n/a/b/c, never /a/bc.')
    .add(`acl is_auth_route path_beg ${AUTH_PATH_PREFIX}`)
    .note("Broker mode's discovery document sits at its issuer's well-known path (the gateway's origin).")
    .add(`acl is_auth_route path ${LOOKER_BROKER_DISCOVERY_PATHS[1]}`)
    .add(`acl is_revocation_list path -i ${AUTH_PATHS.revocations}`, `acl is_revocation_list path_beg -i ${AUTH_PATHS.revocations}/`)
    .add(...pathPrefixAcl('is_api_path', o.apiPathPrefixes));
  if (o.machineRoutes.pathPrefixes.length > 0) f.add(...pathPrefixAcl('is_machine_path', o.machineRoutes.pathPrefixes));
  if (o.machineRoutes.hostName) f.add(`acl is_machine_host req.hdr(host),lower,regsub(':[0-9]+$','') -m str ${o.machineRoutes.hostName.toLowerCase()}`);
  const machineCondition = [o.machineRoutes.pathPrefixes.length > 0 && 'is_machine_path', o.machineRoutes.hostName && 'is_machine_host']
    .filter(Boolean)
    .join(' || ');

  renderHeaderHygiene(f, o, machine);
  renderPathNormalization(f);
  renderCookieLineCheck(f);

  f.note(
    `3. The auth service owns ${AUTH_PATH_PREFIX}*: rate-limited per client address, then passed with the gateway's\ncookies only. The revocation list is for the gateway's own poll (through the relay socket), not for clients.`,
  );
  refuse(f, 404, 'not_found', DECISIONS.notFound, 'the revocation list is only served to the gateway', 'is_revocation_list');
  f.add(
    `acl auth_rate_exceeded sc_http_req_rate(1,${PROXY_NAMES.authRateLimit}) gt ${o.authRateLimit.requestsPerPeriod}`,
    'http-request set-var(txn.route) str(auth) if is_auth_route',
    `http-request track-sc1 src table ${PROXY_NAMES.authRateLimit} if is_auth_route`,
    `http-request set-var(txn.decision) str(${DECISIONS.rateLimited}) if is_auth_route auth_rate_exceeded`,
    'http-request set-var-fmt(txn.reason) "too many requests to the auth service from this address" if is_auth_route auth_rate_exceeded',
    `http-request return status 429 content-type application/json hdr Retry-After ${o.authRateLimit.periodSeconds} hdr Cache-Control no-store lf-string ${jsonError('too_many_requests', '%[var(txn.reason)]')} if is_auth_route auth_rate_exceeded`,
    `http-request set-var(txn.decision) str(${DECISIONS.authRoute}) if is_auth_route`,
  );
  f.note("The auth service gets the gateway's cookies and no other (API Gateway refuses headers over 10,240 bytes).").add(
    ...authServiceCookieRules('is_auth_route'),
    ...authPageRequestRules('is_auth_route'),
    'http-request allow if is_auth_route',
  );
  renderApiGatewayErrors(f);

  renderSessionCookies(f, o);
  if (machine) renderMachineRules(f, o, file, machineCondition);
  renderSessionChecks(f, o, file, machine ? '6' : '5');
  renderInlineRefresh(f, o, file);
  renderValidSession(f, o);
  renderDenial(f, o);

  f.note(
    'Responses: security headers on every answer, and the refreshed cookies when a refresh happened;\nan answer that sets them is never stored by a cache (it would hand the new session to others).',
  );
  if (o.securityHeaders.hstsMaxAgeSeconds > 0)
    f.add(`http-after-response set-header Strict-Transport-Security "max-age=${o.securityHeaders.hstsMaxAgeSeconds}; includeSubDomains"`);
  f.add('http-after-response set-header X-Content-Type-Options nosniff', 'http-after-response set-header Referrer-Policy strict-origin-when-cross-origin');
  if (o.securityHeaders.frameAncestors.length === 0) {
    f.note("Framing: Looker's own X-Frame-Options stands (it knows which pages it embeds); SAMEORIGIN when it sent none.").add(
      'http-after-response set-header X-Frame-Options SAMEORIGIN unless { res.hdr_cnt(x-frame-options) gt 0 }',
    );
  } else {
    f.note(
      'Framing by the origins of securityHeaders.frameAncestors (Looker embedding): X-Frame-Options cannot name\nthem, so it goes and the CSP frame-ancestors directive says who may frame Looker.',
    );
    f.add(
      'http-after-response del-header X-Frame-Options',
      `http-after-response add-header Content-Security-Policy "frame-ancestors 'self' ${o.securityHeaders.frameAncestors.join(' ')}"`,
    );
  }
  f.add(`http-after-response set-header ${HEADERS.requestId} %[unique-id]`);
  renderRefreshedCookies(f);

  f.add('', `use_backend ${PROXY_NAMES.authService} if is_auth_route`, `default_backend ${PROXY_NAMES.looker}`);
  return f;
}

/** How long a browser or client is asked to wait after API Gateway's own throttling or failure answer. */
export const AUTH_SERVICE_RETRY_AFTER_SECONDS = 5;

/** The 5xx statuses API Gateway answers with on its own: 500 (Lambda refused the invocation), 502 (the function failed), 503, 504 (integration timeout). */
const API_GATEWAY_ERROR_STATUSES = [500, 502, 503, 504] as const;

/** Remember whether a request to the auth service is a browser's page load (as the auth service decides: lambda/auth/service-request.ts). */
function authPageRequestRules(condition: string): string[] {
  return [
    `http-request set-var(txn.auth_page) bool(1) if ${condition} { req.hdr(sec-fetch-mode) -i navigate }`,
    `http-request set-var(txn.auth_page) bool(1) if ${condition} { req.hdr(accept) -m sub -i text/html }`,
  ];
}

/**
 * API Gateway's own answers on the auth routes (not the auth service's): it throttles with 429
 * {"message":"Too Many Requests"}, and answers 500 or 502 {"message": "Internal server error"}
 * when the function cannot be invoked or fails, 504 when it outlasts 29 s ("Handling Lambda
 * errors with an API Gateway API", AWS Lambda Developer Guide; "Throttle requests to your REST
 * APIs"). Those answers, and only those, carry the x-amzn-ErrorType header; the auth service
 * never sets it. A browser would show the bare JSON: the gateway answers instead as the auth
 * service does, a page for a page load and JSON otherwise, each with a decision code, a reason,
 * the request id and Retry-After.
 */
function renderApiGatewayErrors(f: Section): void {
  const from = 'api_gateway_answer { var(txn.route) -m str auth }';
  const page = (title: string, message: string) =>
    `'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${message}</p><p><small>Reason: %[var(txn.decision)]. Request id: %[unique-id]</small></p></body></html>'`;
  const answers = (status: number, code: string, title: string, message: string) => {
    const when = `${from} { status ${status} }`;
    const headers = `hdr Retry-After ${AUTH_SERVICE_RETRY_AFTER_SECONDS} hdr Cache-Control no-store`;
    return [
      `http-response return status ${status} content-type "text/html; charset=utf-8" ${headers} lf-string ${page(title, message)} if ${when} { var(txn.auth_page) -m bool }`,
      `http-response return status ${status} content-type application/json ${headers} lf-string ${jsonError(code, '%[var(txn.reason)]')} if ${when}`,
    ];
  };
  f.note(
    "API Gateway's own answers on the auth routes (throttling, a function that failed or timed out) carry\nx-amzn-ErrorType and a bare JSON message: the gateway answers instead, with a code and a reason.",
  ).add(
    'acl api_gateway_answer res.hdr(x-amzn-errortype) -m found',
    `http-response set-var(txn.decision) str(${DECISIONS.authThrottled}) if ${from} { status 429 }`,
    `http-response set-var-fmt(txn.reason) "API Gateway throttled the request to the auth service" if ${from} { status 429 }`,
    `http-response set-var(txn.decision) str(${DECISIONS.authUnavailable}) if ${from} { status ge 500 }`,
    `http-response set-var-fmt(txn.reason) "the auth service failed: API Gateway answered %[status]" if ${from} { status ge 500 }`,
    ...answers(429, 'too_many_requests', 'Sign-in is busy', `Too many sign-ins at once. Try again in ${AUTH_SERVICE_RETRY_AFTER_SECONDS} seconds.`),
    ...API_GATEWAY_ERROR_STATUSES.flatMap((status) =>
      answers(status, 'auth_unavailable', 'Sign-in is unavailable', `The sign-in service failed. Try again in ${AUTH_SERVICE_RETRY_AFTER_SECONDS} seconds.`),
    ),
  );
}
