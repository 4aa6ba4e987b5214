/**
 * The plain HTTP listener (port 80 behind the load balancer): every request is answered
 * with a redirect to the same host, path and query on HTTPS, so a typed
 * `looker.example.com` reaches the gateway; nothing else is served in clear text.
 */
import { SMALL_LISTENER_LIMITS, smallListenerLimits } from './listeners';
import { DECISIONS } from './logging';
import { refuse, Section } from './section';
import { ResolvedGatewayOptions } from './validate';

/** The proxy name, and the `route` and `decision` of its access-log lines. */
export const HTTP_REDIRECT = {
  proxyName: 'http_redirect',
  route: 'http-redirect',
  decision: 'http-redirect',
  /** Permanent: a browser remembers it, and so does a typed bookmark. */
  status: 301,
  /** Why a request gets 400 instead (answer and access log). */
  badHostReason: 'the request needs exactly one Host header with a DNS name or an IP address',
} as const;

/** A host name (an absolute one may end with a dot) with an optional port, lower case; or an IPv6 literal in brackets. */
const HOST_NAME_WITH_PORT = "'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*[.]?(:[0-9]{1,5})?$'";
const IPV6_LITERAL_WITH_PORT = "'^\\[[0-9a-f:.]+\\](:[0-9]{1,5})?$'";

export function renderHttpRedirectFrontend(o: ResolvedGatewayOptions): Section {
  const r = o.httpRedirect;
  if (!r) throw new Error('renderHttpRedirectFrontend needs the httpRedirect option.');
  const port = r.httpsPort === 443 ? '' : `:${r.httpsPort}`;
  const f = new Section(
    `frontend ${HTTP_REDIRECT.proxyName}`,
    'Plain HTTP only redirects to HTTPS (same host, path and query) and serves nothing else. No HSTS\nhere: browsers ignore it over plain HTTP (RFC 6797, section 8.1); the HTTPS answers carry it.',
  );
  f.add(
    o.listener.acceptProxyProtocol ? `bind ${r.bindAddress}:${r.port} accept-proxy` : `bind ${r.bindAddress}:${r.port}`,
    "# Nothing here needs Looker's hour-long timeouts: idle clear-text connections go early.",
    ...smallListenerLimits(SMALL_LISTENER_LIMITS.redirectMaxconn),
    `http-request set-var(txn.route) str(${HTTP_REDIRECT.route})`,
    'http-request set-var(txn.host) req.fhdr(host)',
    'acl has_one_host req.fhdr_cnt(host) eq 1',
    `acl host_is_name req.fhdr(host),lower -m reg ${HOST_NAME_WITH_PORT}`,
    `acl host_is_ipv6_literal req.fhdr(host),lower -m reg ${IPV6_LITERAL_WITH_PORT}`,
  );
  refuse(f, 400, 'bad_request', DECISIONS.badRequest, HTTP_REDIRECT.badHostReason, '!has_one_host || !host_is_name !host_is_ipv6_literal');
  f.note(`The host without its port (the client used port ${r.port} of plain HTTP)${port ? `, then the HTTPS port ${r.httpsPort}` : ''}.`).add(
    `http-request set-var(txn.decision) str(${HTTP_REDIRECT.decision})`,
    "http-request set-var(txn.https_host) req.fhdr(host),lower,regsub(':[0-9]+$','')",
    `http-request redirect location https://%[var(txn.https_host)]${port}%[pathq] code ${HTTP_REDIRECT.status}`,
  );
  return f;
}
