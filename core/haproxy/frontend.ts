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
    'http-request allow if is_auth_route',
  );

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
