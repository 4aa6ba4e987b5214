/**
 * Plain HTTP on the real haproxy 3.0: every request, sent the way the NLB forwards port 80
 * (a PROXY v2 header, then the client's bytes), gets a redirect to the same host, path and
 * query on HTTPS, and nothing else; no HSTS over plain HTTP (RFC 6797, section 8.1: a
 * browser ignores Strict-Transport-Security received over an insecure transport).
 */
import { renderGatewayConfig } from '../../core/haproxy';
import { HTTP_REDIRECT } from '../../core/haproxy/redirect';
import { freePorts } from '../../dev/ports';
import { proxyV2Header, rawHttpExchange, RawHttpAnswer } from '../../dev/proxy-protocol';
import { waitFor } from '../../dev/wait';
import { GatewayEnv, startGatewayEnv } from '../../dev/gateway-env';

jest.setTimeout(60_000);

let env: GatewayEnv;
let httpPort: number;

beforeAll(async () => {
  [httpPort] = await freePorts(1);
  env = await startGatewayEnv({ overrides: (base) => ({ ...base, httpRedirect: { bindAddress: '127.0.0.1', port: httpPort } }) });
});

afterAll(async () => {
  await env?.stop();
});

const nlbDataConnection = () => proxyV2Header({ address: '198.51.100.7', port: 51000 }, { address: '10.0.0.1', port: 80 });

function plainHttp(request: string, proxyHeader: Buffer | null = nlbDataConnection()): Promise<RawHttpAnswer> {
  return rawHttpExchange({ port: httpPort, proxyHeader: proxyHeader ?? undefined, request });
}

const header = (answer: RawHttpAnswer, name: string) => answer.headers.filter(([n]) => n === name).map(([, v]) => v);

function lookerRequests(): number {
  return env.looker.reduce((sum, node) => sum + node.requests.length, 0);
}

describe('a request on plain HTTP', () => {
  test.each([
    ['GET', '/', 'looker.example.com', 'https://looker.example.com/'],
    ['GET', '/dashboards/42?filter=a%20b&tab=2', 'looker.example.com', 'https://looker.example.com/dashboards/42?filter=a%20b&tab=2'],
    ['HEAD', '/login', 'Looker.Example.com:80', 'https://looker.example.com/login'],
    ['POST', '/api/4.0/login', 'agents.looker.example.com', 'https://agents.looker.example.com/api/4.0/login'],
    ['GET', '/x', '[2001:db8::1]:80', 'https://[2001:db8::1]/x'],
    ['GET', '/', 'looker.example.com.', 'https://looker.example.com./'],
  ])('%s %s (Host %s) is redirected to %s, and nothing else', async (method, path, host, location) => {
    const before = lookerRequests();
    const answer = await plainHttp(
      `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nCookie: __Host-lg_session=abc\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
    );
    expect(answer.status).toBe(HTTP_REDIRECT.status);
    expect(header(answer, 'location')).toEqual([location]);
    expect(header(answer, 'strict-transport-security')).toEqual([]);
    expect(header(answer, 'set-cookie')).toEqual([]);
    expect(lookerRequests()).toBe(before);
  });

  test('an absolute-form request line keeps its path and query, not the scheme and host twice', async () => {
    const answer = await plainHttp('GET http://looker.example.com/looks/7?x=1 HTTP/1.1\r\nHost: looker.example.com\r\nConnection: close\r\n\r\n');
    expect(answer.status).toBe(301);
    expect(header(answer, 'location')).toEqual(['https://looker.example.com/looks/7?x=1']);
  });

  test.each([
    ['no Host header (HTTP/1.0)', 'GET / HTTP/1.0\r\n\r\n'],
    ['a Host that is no DNS name', 'GET / HTTP/1.1\r\nHost: under_score.example\r\nConnection: close\r\n\r\n'],
    ['a percent-encoded Host', 'GET / HTTP/1.1\r\nHost: %6cooker.example.com\r\nConnection: close\r\n\r\n'],
  ])('%s: 400 with the reason, no redirect', async (_case, request) => {
    const answer = await plainHttp(request);
    expect(answer.status).toBe(400);
    expect(header(answer, 'location')).toEqual([]);
    expect(JSON.parse(answer.body)).toMatchObject({ error: 'bad_request', reason: HTTP_REDIRECT.badHostReason });
  });

  test.each([
    ['two different Host headers', 'GET / HTTP/1.1\r\nHost: looker.example.com\r\nHost: evil.example\r\nConnection: close\r\n\r\n'],
    ['a Host with a path', 'GET / HTTP/1.1\r\nHost: looker.example.com/x\r\nConnection: close\r\n\r\n'],
    ['a Host with user information', 'GET / HTTP/1.1\r\nHost: looker.example.com@evil.example\r\nConnection: close\r\n\r\n'],
  ])("%s: refused by HAProxy's own request parser (400), no redirect", async (_case, request) => {
    const answer = await plainHttp(request);
    expect(answer.status).toBe(400);
    expect(header(answer, 'location')).toEqual([]);
  });

  test('without the PROXY header (not from the load balancer) the connection gets no answer', async () => {
    const answer = await plainHttp('GET / HTTP/1.1\r\nHost: looker.example.com\r\nConnection: close\r\n\r\n', null);
    expect(answer.status).toBe(0);
  });

  test('each redirect is one JSON access-log line with its route, decision and the client address from the PROXY header', async () => {
    await plainHttp('GET /logged?q=secret HTTP/1.1\r\nHost: looker.example.com\r\nConnection: close\r\n\r\n');
    const line = await waitFor('the access-log line of the redirect', 5000, () =>
      env.logLines().find((l) => l.frontend === HTTP_REDIRECT.proxyName && String(l.path).startsWith('/logged')),
    );
    expect(line).toMatchObject({
      route: HTTP_REDIRECT.route,
      decision: HTTP_REDIRECT.decision,
      status: 301,
      client_ip: '198.51.100.7',
      host: 'looker.example.com',
    });
    // The access log never keeps a query string (it may carry codes).
    expect(String(line.path)).toBe('/logged');
  });
});

describe('the rendered section', () => {
  test('names the HTTPS port when clients reach HTTPS elsewhere than 443 (the local runner)', () => {
    const options = {
      session: { issuer: 'https://gateway.test', audience: 'gw' },
      authService: { host: 'auth.test', addresses: ['127.0.0.1'] },
      looker: { servers: [{ address: '127.0.0.1' }], tlsServerName: 'looker.test' },
    };
    const local = renderGatewayConfig({ ...options, httpRedirect: { port: 8088, httpsPort: 8443 } }).haproxyCfg;
    expect(local).toContain('http-request redirect location https://%[var(txn.https_host)]:8443%[pathq] code 301');
    const deployed = renderGatewayConfig({ ...options, httpRedirect: {} }).haproxyCfg;
    expect(deployed).toContain('bind 0.0.0.0:80 accept-proxy');
    expect(deployed).toContain('http-request redirect location https://%[var(txn.https_host)]%[pathq] code 301');
    expect(renderGatewayConfig(options).haproxyCfg).not.toContain(`frontend ${HTTP_REDIRECT.proxyName}`);
  });

  test('a port taken by another listener is refused with the fix', () => {
    expect(() =>
      renderGatewayConfig({
        session: { issuer: 'https://gateway.test', audience: 'gw' },
        authService: { host: 'auth.test', addresses: ['127.0.0.1'] },
        looker: { servers: [{ address: '127.0.0.1' }], tlsServerName: 'looker.test' },
        healthCheck: { port: 8080 },
        httpRedirect: { port: 8080 },
      }),
    ).toThrow('healthCheck.port and httpRedirect.port are both 8080: give each listener its own port.');
  });
});
