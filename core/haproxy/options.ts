/**
 * The options of the gateway's HAProxy configuration: plain data (jsii-friendly), so the
 * CDK construct, the local runner and the tests can all build one and hand it to
 * renderGatewayConfig().
 */
import type { VerificationKeyEntry } from '../key-material';

/** Where HAProxy sends its access log (one JSON line per request). */
export enum LogDestination {
  /** `log stdout`: the service manager or the test reads it. */
  STDOUT = 'stdout',
  /** A local datagram unix socket such as `/dev/log` (rsyslog / CloudWatch agent). */
  UNIX_SOCKET = 'unix-socket',
  /** A syslog receiver over UDP, for example the CloudWatch agent on 127.0.0.1:514. */
  UDP = 'udp',
}

/** Which claim becomes `X-Forwarded-User`. */
export enum UserClaim {
  SUBJECT = 'sub',
  EMAIL = 'email',
}

export interface ListenerOptions {
  /** Address to bind. @default '0.0.0.0' */
  readonly bindAddress?: string;
  /** TCP port. @default 443 */
  readonly port?: number;
  /**
   * Require a PROXY protocol v2 header on every connection (the NLB sends one), so the
   * real client address is known. Turn off only for local runs without a load balancer.
   * @default true
   */
  readonly acceptProxyProtocol?: boolean;
  /**
   * Concurrent connections of the public listener (100-1000000, at most `process.maxconn`).
   * The health, metrics and redirect listeners have small limits of their own, so a flood of
   * them cannot take these.
   * @default - the process's limit (`process.maxconn`, or HAProxy's own from the file-descriptor limit)
   */
  readonly maxconn?: number;
}

export interface PlainListenerOptions {
  /** Address to bind. @default '0.0.0.0' for the health check, '127.0.0.1' for metrics */
  readonly bindAddress?: string;
  /** TCP port. @default 8080 for the health check, 8405 for metrics */
  readonly port?: number;
}

export interface HttpRedirectOptions {
  /** Address to bind. @default '0.0.0.0' */
  readonly bindAddress?: string;
  /** TCP port of the plain HTTP listener. @default 80 */
  readonly port?: number;
  /**
   * The HTTPS port clients reach the gateway on (the load balancer's listener, not
   * `listener.port`): the redirect names it unless it is 443.
   * @default 443
   */
  readonly httpsPort?: number;
}

export interface SessionCheckOptions {
  /** Expected `iss` claim: the gateway's own issuer URL, exactly as the auth service mints it. */
  readonly issuer: string;
  /** Expected `aud` claim (a single string). */
  readonly audience: string;
  /**
   * The deployment's signing algorithm: 'ES256' or 'RS256'. The config verifies tokens of
   * both, each with a key of its own algorithm (picked by kid), so that a change of
   * algorithm, carried out by the rotation, needs no new config; only checked here.
   * @default 'ES256'
   */
  readonly algorithm?: string;
  /** Allowed clock difference on `exp` and `nbf`, seconds (0-300). @default 30 */
  readonly clockSkewSeconds?: number;
  /** A session that expires within this many seconds is refreshed inline (0-3600). @default 60 */
  readonly refreshWindowSeconds?: number;
  /** The claim sent as `X-Forwarded-User`. @default UserClaim.SUBJECT */
  readonly userClaim?: UserClaim;
  /**
   * User attribute names (lower case, as in the claim rules): each becomes an
   * `X-Looker-Attr-<Name>` header from the `attr_<name>` claim. HAProxy cannot iterate
   * claims, so the names must be listed here.
   * @default - no attribute headers
   */
  readonly attributeNames?: string[];
  /**
   * Remember tokens whose signature was verified (stick table keyed by the SHA-256 of the
   * whole token) so repeated requests skip the signature check. `exp`, `nbf`, `iss`,
   * `aud` and the kid are still checked on every request.
   * @default true
   */
  readonly verificationCache?: boolean;
  /** Entries of the verification cache. @default 100000 */
  readonly verificationCacheSize?: number;
  /** Largest session cookie value accepted, bytes (256-8192). @default 4096 */
  readonly maxTokenBytes?: number;
}

export interface InlineRefreshOptions {
  /**
   * How long the auth service may take to refresh a session, seconds (1-29: API Gateway
   * gives up at 29 s); slower counts as failed. Keep it above the auth service's IdP
   * timeout plus about 2 s, or a slow refresh that succeeds is abandoned and its rotated
   * refresh token lost (core/timeouts.ts).
   * @default 7 (the auth service's 5 s IdP timeout plus 2 s)
   */
  readonly timeoutSeconds?: number;
  /**
   * How long a refresh result is reused for concurrent requests of the same browser,
   * seconds (0-60): the browser keeps sending the old cookies until the first response lands.
   * @default 5
   */
  readonly graceSeconds?: number;
  /**
   * How long after its `exp` a session may still be refreshed inline, seconds (0-86400).
   * Later, a navigation that carries a refresh cookie goes to `/oauth2/refresh?rd=<path>`
   * (the auth service refreshes and redirects back) and anything else gets 401: an old
   * token, stolen or left in a closed laptop, cannot make the gateway call the auth
   * service on its own.
   * @default 1800
   */
  readonly maxExpiredSeconds?: number;
  /**
   * Inline refreshes started per minute for one client address (1-100000); more are
   * refused (reason in the access log). Requests that join a refresh already running are
   * not counted. Raise it when many users share one address (a NAT).
   * @default 300
   */
  readonly perClientAddressPerMinute?: number;
  /**
   * Inline refreshes started per minute for one session id (`sid`, 1-1000); more are
   * refused. A browser needs one per session lifetime; the limit stops one token, sent
   * with random refresh cookies, from costing one auth-service call each.
   * @default 3
   */
  readonly perSessionPerMinute?: number;
  /**
   * Entries of the single-flight table (1-1000000): refreshes running, or finished less
   * than `graceSeconds` ago. When it is full the oldest finished entry is dropped; when
   * every entry is still running, the refresh is refused (reason in the access log).
   * @default 10000
   */
  readonly maxTrackedRefreshes?: number;
}

export interface RevocationOptions {
  /**
   * How often each HAProxy process polls the auth service's list of revoked session ids
   * (`GET /oauth2/revocations`, through the local relay socket), seconds (1-300). A logout
   * takes effect on every instance within about this long.
   * @default 5
   */
  readonly pollSeconds?: number;
}

export interface AuthServiceOptions {
  /** Host name the auth service answers to (Host header), e.g. `abc123.execute-api.eu-west-1.amazonaws.com`. */
  readonly host: string;
  /** TCP port. @default 443 */
  readonly port?: number;
  /** IP addresses to connect to. @default - connect to `dnsName` (or `host`) resolved by DNS */
  readonly addresses?: string[];
  /** DNS name to connect to, e.g. the VPC endpoint's name. @default - `host` */
  readonly dnsName?: string;
  /** TLS server name (SNI) and the name the certificate must carry. @default - `host` */
  readonly serverName?: string;
  /** Prefix prepended to every path, e.g. the API stage `/prod`. @default - none */
  readonly pathPrefix?: string;
}

export interface LookerServerOptions {
  /** IP address or host name. */
  readonly address: string;
  /** TCP port. @default 9999 */
  readonly port?: number;
}

export interface LookerOptions {
  /** Static list of Looker nodes. @default - none: `dnsName` must be set */
  readonly servers?: LookerServerOptions[];
  /** A DNS name that resolves to every Looker node (server-template). @default - none: `servers` must be set */
  readonly dnsName?: string;
  /** Port used with `dnsName`. @default 9999 */
  readonly dnsPort?: number;
  /** Most nodes `dnsName` can resolve to. @default 10 */
  readonly maxDnsServers?: number;
  /** TLS name Looker's certificates carry (SNI and verification). */
  readonly tlsServerName: string;
  /** Health check path. @default '/alive' */
  readonly healthCheckPath?: string;
  /** Seconds between health checks (1-300). @default 5 */
  readonly healthCheckIntervalSeconds?: number;
  /** Inactivity timeout for requests, responses and websockets, seconds (>= 3600). @default 3600 */
  readonly timeoutSeconds?: number;
}

export interface ResolverOptions {
  /** Name servers as `ip:port`, e.g. the VPC resolver `169.254.169.253:53`. @default - none */
  readonly nameservers?: string[];
  /** Also use the name servers of /etc/resolv.conf. @default true when no nameservers are given */
  readonly useResolvConf?: boolean;
}

/**
 * A script or AI agent that calls Looker with a client certificate instead of a browser
 * session. HAProxy looks the certificate up by its SHA-256 fingerprint and sends `name` to
 * Looker as `X-Forwarded-User`.
 */
export interface MachineClient {
  /** Identity sent as `X-Forwarded-User`: letters, digits, ".", "_", "@" and "-" (at most 128). */
  readonly name: string;
  /**
   * SHA-256 of the client certificate's DER, 64 hex digits, colons allowed
   * (`openssl x509 -in client.crt -noout -fingerprint -sha256`).
   */
  readonly certificateSha256: string;
  /**
   * Upper-case HTTP methods this client may use.
   * @default ["GET"]
   */
  readonly allowedMethods?: string[];
  /** Path prefixes this client may call; each must lie inside one of `MachineRoutes.pathPrefixes` (unless the routes are a host name of their own). */
  readonly allowedPathPrefixes: string[];
}

/** Where a client certificate, not a session, is required. */
export interface MachineRoutes {
  /**
   * Path prefixes on the gateway's host name reserved for machine clients, for example
   * "/api/4.0/". They must not overlap /oauth2/. Browsers that hold client certificates
   * may show a certificate picker on this host; use `hostName` alone to avoid that.
   * @default - none: give `hostName`
   */
  readonly pathPrefixes?: string[];
  /**
   * A host name of its own for machine clients, on which every path is a machine route and
   * the only one where HAProxy asks for a client certificate (when `pathPrefixes` is
   * empty). Point it at the load balancer too; the frontend certificate must carry it.
   * @default - none: give `pathPrefixes`
   */
  readonly hostName?: string;
}

export interface SecurityHeaderOptions {
  /** HSTS max-age, seconds (0 disables HSTS). @default 31536000 */
  readonly hstsMaxAgeSeconds?: number;
  /**
   * Origins allowed to embed Looker in a frame (Looker embedding), e.g.
   * 'https://portal.example.com'. Empty: `X-Frame-Options: SAMEORIGIN`.
   * @default - same origin only
   */
  readonly frameAncestors?: string[];
}

export interface HeaderHygieneOptions {
  /** More request headers to delete before anything else. @default - the default list only */
  readonly extraStrippedHeaders?: string[];
  /** More header name prefixes to delete. @default - the default prefixes only */
  readonly extraStrippedHeaderPrefixes?: string[];
}

export interface RateLimitOptions {
  /** Requests allowed per client address and period on /oauth2/*. @default 60 */
  readonly requestsPerPeriod?: number;
  /** Period, seconds (1-3600). @default 10 */
  readonly periodSeconds?: number;
}

export interface LoggingOptions {
  /** @default LogDestination.STDOUT */
  readonly destination?: LogDestination;
  /** Socket path (UNIX_SOCKET) or `ip:port` (UDP). @default '/dev/log' for UNIX_SOCKET, '127.0.0.1:514' for UDP */
  readonly target?: string;
  /** Syslog facility. @default 'local0' */
  readonly facility?: string;
}

export interface ProcessOptions {
  /** Worker threads (1-64). @default 2 */
  readonly nbthread?: number;
  /**
   * Unprivileged user the workers run as once the master (root) has bound the listeners
   * and read the keys; reloads stay seamless because the master keeps its privileges.
   * Instances use Debian's `haproxy` user.
   * @default - the user that starts HAProxy
   */
  readonly user?: string;
  /** Group of `user`. @default - the group that starts HAProxy */
  readonly group?: string;
  /** Concurrent connections per process (each needs two file descriptors). @default - derived by HAProxy from the file-descriptor limit (ulimit -n) */
  readonly maxconn?: number;
}

/** Key and certificate material, when the caller has it (tests, local runs); on instances key-sync writes these files. */
export interface GatewayMaterial {
  /** Public session keys with their slots; the renderer writes the three slot files and the kid map. */
  readonly sessionKeys?: VerificationKeyEntry[];
  /** Frontend certificate, chain and private key, PEM. */
  readonly frontendCertificatePem?: string;
  /** CAs for machine-client certificates, PEM. */
  readonly clientCaPem?: string;
  /** CRL for machine-client certificates, PEM. */
  readonly clientCrlPem?: string;
  /** Client certificate and key for mTLS to Looker, PEM. */
  readonly backendClientPem?: string;
  /** CAs of Looker's server certificates, PEM. */
  readonly backendCaPem?: string;
  /** CAs of the auth service's certificate, PEM. */
  readonly authServiceCaPem?: string;
}

export interface GatewayConfigOptions {
  /** Directory holding every file the config names. @default '/etc/haproxy/gateway' */
  readonly configDir?: string;
  /** Directory for the stats socket and the internal refresh socket. @default '/run/haproxy' */
  readonly runtimeDir?: string;
  /** The public TLS listener. @default - 0.0.0.0:443 with PROXY protocol */
  readonly listener?: ListenerOptions;
  /**
   * The load balancer's health check (HTTP). With `listener.acceptProxyProtocol` it requires
   * the PROXY v2 header too: a target group with proxy protocol v2 sends it on health-check
   * connections as well. It answers 200 whenever the gateway itself works.
   * @default - 0.0.0.0:8080
   */
  readonly healthCheck?: PlainListenerOptions;
  /**
   * A second bind of the health check for local readiness probes (the instance's own boot
   * check), plain HTTP without PROXY header. Give it when the health check requires the
   * header. Its address defaults to 127.0.0.1.
   * @default - none: only the health-check bind
   */
  readonly readiness?: PlainListenerOptions;
  /** Prometheus `/metrics` and the stats page `/stats`. @default - 127.0.0.1:8405 */
  readonly metrics?: PlainListenerOptions;
  /**
   * Plain HTTP that answers every request with a redirect to the same host, path and query on
   * HTTPS, and nothing else. With `listener.acceptProxyProtocol` it requires the PROXY header too.
   * @default - no plain HTTP listener
   */
  readonly httpRedirect?: HttpRedirectOptions;
  readonly session: SessionCheckOptions;
  /** @default - 7 s timeout, 5 s grace, 30 min after expiry, 300 per address and 3 per session per minute */
  readonly refresh?: InlineRefreshOptions;
  readonly authService: AuthServiceOptions;
  readonly looker: LookerOptions;
  /** DNS resolvers for `dnsName`s. @default - /etc/resolv.conf */
  readonly resolvers?: ResolverOptions;
  /** Machine clients (client certificates). @default - none */
  readonly machineClients?: MachineClient[];
  /** @default - no machine routes */
  readonly machineRoutes?: MachineRoutes;
  /** Check machine-client certificates against a CRL (tls/client-crl.pem). @default false */
  readonly clientCrl?: boolean;
  /** @default - HSTS one year, same-origin framing */
  readonly securityHeaders?: SecurityHeaderOptions;
  /** @default - the default strip list */
  readonly headerHygiene?: HeaderHygieneOptions;
  /** Paths that are API calls, never browser navigations. @default ['/api/'] */
  readonly apiPathPrefixes?: string[];
  /** Rate limit of /oauth2/* per client address. @default - 60 requests per 10 s */
  readonly authRateLimit?: RateLimitOptions;
  /** @default - JSON lines to stdout */
  readonly logging?: LoggingOptions;
  /** @default - 2 threads, connections limited by the file-descriptor limit */
  readonly process?: ProcessOptions;
  /** @default - no material: the files are named in the config but not rendered */
  readonly material?: GatewayMaterial;
  /** Session revocation (logout) on every instance without reload. @default - poll every 5 s */
  readonly revocation?: RevocationOptions;
}
