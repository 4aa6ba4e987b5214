/**
 * One test per validation error: each names the option, the bad value and the fix.
 */
import { GatewayConfigError, GatewayConfigOptions, LogDestination, UserClaim, validateGatewayOptions } from '../../core/haproxy';

const FINGERPRINT = 'ab'.repeat(32);

function valid(): GatewayConfigOptions {
  return {
    session: { issuer: 'https://gateway.example.com/oauth2', audience: 'looker-gateway' },
    authService: { host: 'abc123.execute-api.eu-west-1.amazonaws.com', addresses: ['10.0.1.5'] },
    looker: { servers: [{ address: '10.0.2.10' }], tlsServerName: 'looker.internal.example.com' },
  };
}

function expectError(change: (o: GatewayConfigOptions) => GatewayConfigOptions, message: string | RegExp): void {
  let caught: unknown;
  try {
    validateGatewayOptions(change(valid()));
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(GatewayConfigError);
  if (typeof message === 'string') expect((caught as Error).message).toBe(message);
  else expect((caught as Error).message).toMatch(message);
}

test('the minimal options are valid and get the documented defaults', () => {
  const o = validateGatewayOptions(valid());
  expect(o).toMatchObject({
    configDir: '/etc/haproxy/gateway',
    runtimeDir: '/run/haproxy',
    listener: { bindAddress: '0.0.0.0', port: 443, acceptProxyProtocol: true },
    healthCheck: { bindAddress: '0.0.0.0', port: 8080 },
    metrics: { bindAddress: '127.0.0.1', port: 8405 },
    session: { algorithm: 'ES256', clockSkewSeconds: 30, refreshWindowSeconds: 60, userClaim: UserClaim.SUBJECT, verificationCache: true, maxTokenBytes: 4096 },
    refresh: {
      timeoutSeconds: 7,
      graceSeconds: 5,
      maxExpiredSeconds: 1800,
      perClientAddressPerMinute: 300,
      perSessionPerMinute: 3,
      maxTrackedRefreshes: 10_000,
    },
    revocation: { pollSeconds: 5 },
    authService: { port: 443, serverName: 'abc123.execute-api.eu-west-1.amazonaws.com', pathPrefix: '' },
    looker: { servers: [{ address: '10.0.2.10', port: 9999 }], healthCheckPath: '/alive', timeoutSeconds: 3600 },
    authRateLimit: { requestsPerPeriod: 60, periodSeconds: 10 },
    logging: { destination: LogDestination.STDOUT },
    process: { nbthread: 2, maxconn: undefined },
  });
});

describe('validation errors', () => {
  test('port out of range', () => expectError((o) => ({ ...o, listener: { port: 70000 } }), 'listener.port is 70000: expected a TCP port from 1 to 65535.'));
  test('two listeners on one port', () =>
    expectError(
      (o) => ({ ...o, listener: { port: 8443 }, healthCheck: { port: 8443 } }),
      'listener.port and healthCheck.port are both 8443: give each listener its own port.',
    ));
  test('bind address that is not an IP', () =>
    expectError(
      (o) => ({ ...o, metrics: { bindAddress: 'localhost' } }),
      'metrics.bindAddress is "localhost": expected an IP address to bind, such as "0.0.0.0" or "127.0.0.1".',
    ));
  test('relative config directory', () =>
    expectError(
      (o) => ({ ...o, configDir: 'etc/gw' }),
      'configDir is "etc/gw": expected an absolute directory path without spaces or quotes, such as "/etc/haproxy/gateway".',
    ));
  test('empty issuer', () =>
    expectError(
      (o) => ({ ...o, session: { ...o.session, issuer: ' ' } }),
      'session.issuer is " ": it must not be empty (for example "https://looker.example.com/oauth2").',
    ));
  test('empty audience', () =>
    expectError((o) => ({ ...o, session: { ...o.session, audience: '' } }), 'session.audience is "": it must not be empty (for example "looker-gateway").'));
  test('issuer with a space', () =>
    expectError((o) => ({ ...o, session: { ...o.session, issuer: 'https://a b' } }), /^session.issuer is "https:\/\/a b": it must not contain spaces, quotes/));
  test('unknown algorithm', () =>
    expectError((o) => ({ ...o, session: { ...o.session, algorithm: 'HS256' } }), 'session.algorithm is "HS256": expected one of ES256, RS256.'));
  test('clock skew out of range', () =>
    expectError(
      (o) => ({ ...o, session: { ...o.session, clockSkewSeconds: 600 } }),
      'session.clockSkewSeconds is 600: expected a whole number of seconds from 0 to 300.',
    ));
  test('refresh window out of range', () =>
    expectError(
      (o) => ({ ...o, session: { ...o.session, refreshWindowSeconds: -1 } }),
      'session.refreshWindowSeconds is -1: expected a whole number of seconds from 0 to 3600.',
    ));
  test('refresh timeout not a whole number', () =>
    expectError((o) => ({ ...o, refresh: { timeoutSeconds: 2.5 } }), 'refresh.timeoutSeconds is 2.5: expected a whole number of seconds from 1 to 29.'));
  test("refresh timeout beyond API Gateway's 29 s", () =>
    expectError((o) => ({ ...o, refresh: { timeoutSeconds: 30 } }), 'refresh.timeoutSeconds is 30: expected a whole number of seconds from 1 to 29.'));
  test('listener maxconn out of range', () =>
    expectError((o) => ({ ...o, listener: { maxconn: 10 } }), 'listener.maxconn is 10: expected a whole number from 100 to 1000000.'));
  test('listener maxconn above the process limit', () =>
    expectError(
      (o) => ({ ...o, listener: { maxconn: 5000 }, process: { maxconn: 4000 } }),
      'listener.maxconn is 5000, above process.maxconn 4000: the process never accepts more than its own limit; lower listener.maxconn or raise process.maxconn.',
    ));
  test('attribute name', () =>
    expectError(
      (o) => ({ ...o, session: { ...o.session, attributeNames: ['Cost-Center'] } }),
      'session.attributeNames has "Cost-Center": use lower case letters, digits and "_", starting with a letter, at most 32 characters (for example "region").',
    ));
  test('attribute listed twice', () =>
    expectError(
      (o) => ({ ...o, session: { ...o.session, attributeNames: ['region', 'region'] } }),
      'session.attributeNames lists a name twice (region, region): list each attribute once.',
    ));
  test('unknown user claim', () =>
    expectError(
      (o) => ({ ...o, session: { ...o.session, userClaim: 'name' as UserClaim } }),
      'session.userClaim is "name": expected UserClaim.SUBJECT ("sub") or UserClaim.EMAIL ("email").',
    ));
  test('auth service host that is not a DNS name', () =>
    expectError(
      (o) => ({ ...o, authService: { host: 'https://api.example.com' } }),
      'authService.host is "https://api.example.com": expected a DNS name such as "looker.internal.example.com" or an IP address.',
    ));
  test('auth service path prefix with a trailing slash', () =>
    expectError(
      (o) => ({ ...o, authService: { ...o.authService, pathPrefix: '/prod/' } }),
      'authService.pathPrefix is "/prod/": expected a path such as "/prod" (starts with "/", no trailing "/").',
    ));
  test('auth service address that is not an IP', () =>
    expectError(
      (o) => ({ ...o, authService: { ...o.authService, addresses: ['auth.internal'] } }),
      'authService.addresses has "auth.internal": expected IP addresses; use authService.dnsName for a DNS name.',
    ));
  test('empty Looker server list', () =>
    expectError((o) => ({ ...o, looker: { ...o.looker, servers: [] } }), 'looker.servers is empty: list at least one Looker node, or use looker.dnsName.'));
  test('neither servers nor a DNS name', () =>
    expectError(
      (o) => ({ ...o, looker: { tlsServerName: 'looker.example.com' } }),
      'looker has neither servers nor dnsName: list the Looker nodes in looker.servers or give a DNS name in looker.dnsName.',
    ));
  test('both servers and a DNS name', () =>
    expectError(
      (o) => ({ ...o, looker: { ...o.looker, dnsName: 'looker.internal' } }),
      'looker has both servers and dnsName ("looker.internal"): use one of them.',
    ));
  test('Looker timeout below an hour', () =>
    expectError(
      (o) => ({ ...o, looker: { ...o.looker, timeoutSeconds: 60 } }),
      /^looker.timeoutSeconds is 60: expected a whole number of seconds \(Looker queries and websockets need at least an hour\) from 3600 to 86400.$/,
    ));
  test('Looker server port', () =>
    expectError(
      (o) => ({ ...o, looker: { ...o.looker, servers: [{ address: '10.0.0.1', port: 0 }] } }),
      'looker.servers[0].port is 0: expected a TCP port from 1 to 65535.',
    ));
  test('resolver without a port', () =>
    expectError(
      (o) => ({ ...o, resolvers: { nameservers: ['169.254.169.253'] } }),
      'resolvers.nameservers has "169.254.169.253": expected "ip:port", such as "169.254.169.253:53".',
    ));
  test('DNS needed but no resolver', () =>
    expectError(
      (o) => ({ ...o, looker: { dnsName: 'looker.internal', tlsServerName: 'looker.internal' }, resolvers: { useResolvConf: false } }),
      /^resolvers has no name server and useResolvConf is false, but a server is found by DNS/,
    ));
  test('header name that is not an RFC 7230 token', () =>
    expectError(
      (o) => ({ ...o, headerHygiene: { extraStrippedHeaders: ['X Bad'] } }),
      /^headerHygiene.extraStrippedHeaders has "X Bad": a header name is an RFC 7230 token/,
    ));
  test('overlapping machine route prefixes', () =>
    expectError(
      (o) => ({ ...o, machineRoutes: { pathPrefixes: ['/api/', '/api/4.0/'] } }),
      'machineRoutes.pathPrefixes has overlapping prefixes "/api/" and "/api/4.0/": keep only the shorter one.',
    ));
  test('machine route overlapping the auth service', () =>
    expectError(
      (o) => ({ ...o, machineRoutes: { pathPrefixes: ['/oauth2/machine/'] } }),
      'machineRoutes.pathPrefixes has "/oauth2/machine/", which overlaps the auth service prefix "/oauth2/": choose a prefix outside it.',
    ));
  test('path prefix without a leading slash', () =>
    expectError(
      (o) => ({ ...o, machineRoutes: { pathPrefixes: ['api/'] } }),
      'machineRoutes.pathPrefixes has "api/": expected a path prefix starting with "/" made of URL path characters, such as "/api/4.0/".',
    ));
  test('fingerprint that is not 64 hex digits', () =>
    expectError(
      (o) => ({
        ...o,
        machineRoutes: { pathPrefixes: ['/api/4.0/'] },
        machineClients: [{ name: 'bot', certificateSha256: 'abc', allowedPathPrefixes: ['/api/4.0/'] }],
      }),
      'machineClients[0].certificateSha256 is "abc": expected the SHA-256 of the certificate\'s DER as 64 hex digits (openssl x509 -noout -fingerprint -sha256).',
    ));
  test('fingerprint used twice', () =>
    expectError(
      (o) => ({
        ...o,
        machineRoutes: { pathPrefixes: ['/api/4.0/'] },
        machineClients: [
          { name: 'a', certificateSha256: FINGERPRINT, allowedPathPrefixes: ['/api/4.0/'] },
          { name: 'b', certificateSha256: FINGERPRINT.toUpperCase().replace(/(..)(?!$)/g, '$1:'), allowedPathPrefixes: ['/api/4.0/'] },
        ],
      }),
      `machineClients[1].certificateSha256 ${FINGERPRINT} is used twice: one certificate maps to one identity.`,
    ));
  test('machine client name', () =>
    expectError(
      (o) => ({
        ...o,
        machineRoutes: { pathPrefixes: ['/api/4.0/'] },
        machineClients: [{ name: 'bad name', certificateSha256: FINGERPRINT, allowedPathPrefixes: ['/api/4.0/'] }],
      }),
      'machineClients[0].name is "bad name": use letters, digits, ".", "_", "@" and "-" (at most 128), such as "reporting-bot".',
    ));
  test('machine client method', () =>
    expectError(
      (o) => ({
        ...o,
        machineRoutes: { pathPrefixes: ['/api/4.0/'] },
        machineClients: [{ name: 'bot', certificateSha256: FINGERPRINT, allowedMethods: ['get'], allowedPathPrefixes: ['/api/4.0/'] }],
      }),
      'machineClients[0].allowedMethods has "get": expected upper-case HTTP methods such as "GET" or "POST".',
    ));
  test('machine client path outside every machine route', () =>
    expectError(
      (o) => ({
        ...o,
        machineRoutes: { pathPrefixes: ['/api/4.0/'] },
        machineClients: [{ name: 'bot', certificateSha256: FINGERPRINT, allowedPathPrefixes: ['/admin/'] }],
      }),
      'machineClients[0].allowedPathPrefixes has "/admin/", which is not inside a machine route (/api/4.0/): add a matching machineRoutes.pathPrefixes entry.',
    ));
  test('machine clients without machine routes', () =>
    expectError(
      (o) => ({ ...o, machineClients: [{ name: 'bot', certificateSha256: FINGERPRINT, allowedPathPrefixes: ['/api/4.0/'] }] }),
      /^machineClients\[0\].allowedPathPrefixes has "\/api\/4.0\/", which is not inside a machine route \(none\)/,
    ));
  test('frame ancestor that is not an https origin', () =>
    expectError(
      (o) => ({ ...o, securityHeaders: { frameAncestors: ['http://portal.example.com'] } }),
      'securityHeaders.frameAncestors has "http://portal.example.com": expected an https origin such as "https://portal.example.com".',
    ));
  test('log target of the wrong shape', () =>
    expectError(
      (o) => ({ ...o, logging: { destination: LogDestination.UNIX_SOCKET, target: 'dev/log' } }),
      'logging.target is "dev/log": a unix socket target is an absolute path such as "/dev/log".',
    ));
  test('unknown syslog facility', () =>
    expectError((o) => ({ ...o, logging: { facility: 'local9' } }), 'logging.facility is "local9": expected a syslog facility such as "local0".'));
  test('thread count', () => expectError((o) => ({ ...o, process: { nbthread: 0 } }), 'process.nbthread is 0: expected a whole number from 1 to 64.'));
  test('session keys without a current key', () =>
    expectError(
      (o) => ({ ...o, material: { sessionKeys: [{ kid: 'k1', status: 'previous', publicJwk: { kty: 'EC' }, publicKeyPem: '' }] } }),
      'material.sessionKeys has no "current" key: the auth service signs with the current key, so HAProxy must know it.',
    ));
  test('a kid HAProxy could not read from a map', () =>
    expectError(
      (o) => ({ ...o, material: { sessionKeys: [{ kid: 'k 1', status: 'current', publicJwk: { kty: 'EC' }, publicKeyPem: '' }] } }),
      'material.sessionKeys has kid "k 1": a kid is 1-128 letters, digits, ".", "_" or "-".',
    ));
  test('inline refresh allowed too long after expiry', () =>
    expectError(
      (o) => ({ ...o, refresh: { maxExpiredSeconds: 100_000 } }),
      'refresh.maxExpiredSeconds is 100000: expected a whole number of seconds from 0 to 86400.',
    ));
  test('inline refresh rate per client address', () =>
    expectError(
      (o) => ({ ...o, refresh: { perClientAddressPerMinute: 0 } }),
      'refresh.perClientAddressPerMinute is 0: expected a whole number from 1 to 100000.',
    ));
  test('inline refresh rate per session', () =>
    expectError((o) => ({ ...o, refresh: { perSessionPerMinute: 1.5 } }), 'refresh.perSessionPerMinute is 1.5: expected a whole number from 1 to 1000.'));
  test('single-flight table size', () =>
    expectError((o) => ({ ...o, refresh: { maxTrackedRefreshes: 0 } }), 'refresh.maxTrackedRefreshes is 0: expected a whole number from 1 to 1000000.'));
  test('revocation poll interval', () =>
    expectError((o) => ({ ...o, revocation: { pollSeconds: 0 } }), 'revocation.pollSeconds is 0: expected a whole number of seconds from 1 to 300.'));
  test('a prefix that is not in normal form would never match a normalized path', () =>
    expectError(
      (o) => ({ ...o, machineRoutes: { pathPrefixes: ['/api/4.0/./queries/'] } }),
      'machineRoutes.pathPrefixes has "/api/4.0/./queries/", which no request path can start with: the gateway normalizes paths first (no "." or ".." segments, no "//", unreserved characters not percent-encoded, escapes in upper case). Use "/api/4.0/queries/".',
    ));
  test('a prefix with an escape of an unreserved character', () =>
    expectError((o) => ({ ...o, apiPathPrefixes: ['/%61pi/'] }), /^apiPathPrefixes has "\/%61pi\/", which no request path can start with: .* Use "\/api\/".$/));
  test('a prefix with what the gateway refuses in paths', () =>
    expectError(
      (o) => ({ ...o, machineRoutes: { pathPrefixes: ['/api;v=4/'] } }),
      'machineRoutes.pathPrefixes has "/api;v=4/": the path has ; parameters or a backslash, and the gateway refuses such paths (400). Use a prefix without them.',
    ));
  test('machine client prefixes are inside a route on segment boundaries', () =>
    expectError(
      (o) => ({
        ...o,
        machineRoutes: { pathPrefixes: ['/api/4.0/queries'] },
        machineClients: [{ name: 'bot', certificateSha256: FINGERPRINT, allowedPathPrefixes: ['/api/4.0/queriesX/'] }],
      }),
      'machineClients[0].allowedPathPrefixes has "/api/4.0/queriesX/", which is not inside a machine route (/api/4.0/queries): add a matching machineRoutes.pathPrefixes entry.',
    ));
  test('missing session options', () =>
    expectError(
      (o) => ({ ...o, session: undefined as unknown as GatewayConfigOptions['session'] }),
      'session is missing: set session.issuer and session.audience to what the auth service mints.',
    ));
});
