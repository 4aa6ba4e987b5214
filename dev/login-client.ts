/**
 * A browserless client of the gateway's login: a cookie jar, one request at a time without
 * following redirects, and the dev IdP's login form filled in as a browser would. Shared by
 * the auth service's test harness and the resilience rig's load driver.
 */
import type { CustomFetch } from 'openid-client';

/** The password the harness logs `user` in with at the IdP's login form. */
export function testPassword(user: string): string {
  return `${user}-test-password`;
}

/** A minimal cookie jar keyed by host:port (the tests' two origins never share cookies). */
export class CookieJar {
  private readonly jars = new Map<string, Map<string, string>>();

  store(url: string, setCookies: string[]): void {
    const host = new URL(url).host;
    const jar = this.jars.get(host) ?? new Map<string, string>();
    for (const line of setCookies) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const maxAge = attributes.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('max-age='));
      if (value === '' || (maxAge && Number(maxAge.split('=')[1]) <= 0)) jar.delete(name);
      else jar.set(name, value);
    }
    this.jars.set(host, jar);
  }

  header(url: string): string | undefined {
    const jar = this.jars.get(new URL(url).host);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([n, v]) => `${n}=${v}`).join('; ');
  }

  get(url: string, name: string): string | undefined {
    return this.jars.get(new URL(url).host)?.get(name);
  }

  set(url: string, name: string, value: string): void {
    const host = new URL(url).host;
    const jar = this.jars.get(host) ?? new Map<string, string>();
    jar.set(name, value);
    this.jars.set(host, jar);
  }

  delete(url: string, name: string): void {
    this.jars.get(new URL(url).host)?.delete(name);
  }
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly setCookies: string[];
  readonly body: string;
  readonly location?: string;
}

/** One request with the jar's cookies, no redirect following. */
export async function request(
  fetchFn: CustomFetch,
  jar: CookieJar,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  const cookie = jar.header(url);
  if (cookie) headers.cookie = cookie;
  const answer = await fetchFn(url, { method: init.method ?? 'GET', headers, body: init.body, redirect: 'manual' } as unknown as Parameters<CustomFetch>[1]);
  const setCookies = answer.headers.getSetCookie();
  jar.store(url, setCookies);
  const location = answer.headers.get('location') ?? undefined;
  return {
    status: answer.status,
    headers: answer.headers,
    setCookies,
    body: await answer.text(),
    location: location ? new URL(location, url).toString() : undefined,
  };
}

/**
 * From the authorization URL to the redirect back to the gateway callback (not followed),
 * as a browser goes: every page is loaded, and the login form is filled in where the IdP
 * shows it (other interactions, such as a consent asked for with prompt=consent, the dev
 * IdP completes by itself for the gateway's client).
 */
export async function idpLogin(fetchFn: CustomFetch, jar: CookieJar, authorizationUrl: string, user: string): Promise<string> {
  let at = authorizationUrl;
  let answer = await request(fetchFn, jar, at);
  for (let hops = 0; hops < 12; hops += 1) {
    if (answer.status === 200 && /\/interaction\/[\w-]+$/.test(new URL(at).pathname) && answer.body.includes('name="username"')) {
      // What the IdP's login form posts.
      const form = new URLSearchParams({ username: user, password: testPassword(user) });
      answer = await request(fetchFn, jar, `${at}/login`, {
        method: 'POST',
        body: form.toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      continue;
    }
    if (!answer.location) throw new Error(`IdP answered ${answer.status} without a redirect: ${answer.body.slice(0, 300)}`);
    if (answer.location.includes('/oauth2/callback')) return answer.location;
    at = answer.location;
    answer = await request(fetchFn, jar, at);
  }
  throw new Error(`too many redirects at the IdP (last at ${at})`);
}
