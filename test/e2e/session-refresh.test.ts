/**
 * Silent refresh with a short session: HAProxy refreshes inline through the auth
 * service, during page navigation and during a page's fetch() calls, without a redirect
 * or a 401, and the dev IdP sees the refresh token being redeemed (and rotated).
 */
import { Browser, BrowserContext, Page, Response } from 'playwright-core';
import { DEV_USERS } from '../../dev/stand-ins/idp/dev-users';
import { LocalGateway, startLocalGateway } from '../../local/gateway';
import { launchChromium } from './support/browser';
import { countRequestsTo, field, loginFromDeepLink, START_PATH, VIEWPORT } from './support/flows';

/**
 * A session lives SESSION_TTL s and is refreshed once less than REFRESH_WINDOW s are left:
 * here 3 s after it was minted. (The auth service accepts lifetimes from 60 s, so the
 * window, not the lifetime, is what makes the refresh come quickly.)
 */
const SESSION_TTL = 60;
const REFRESH_WINDOW = 57;

let gateway: LocalGateway;
let browser: Browser;
let context: BrowserContext;

beforeAll(async () => {
  gateway = await startLocalGateway({ sessionTtlSeconds: SESSION_TTL, refreshWindowSeconds: REFRESH_WINDOW, mode: 'direct' });
  browser = await launchChromium(gateway.trustedSpkiHashes);
  context = await browser.newContext({ viewport: VIEWPORT });
});

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await browser?.close();
  await gateway?.stop();
});

/** Waits until the page's session is inside its refresh window (or past its expiry). */
async function waitForRefreshWindow(page: Page): Promise<void> {
  const exp = Number(await field(page, 'session-expires').locator('time').getAttribute('data-exp'));
  expect(exp).toBeGreaterThan(0);
  const due = (exp - REFRESH_WINDOW + 1) * 1000 - Date.now();
  if (due > 0) await page.waitForTimeout(due);
}

function watchStatuses(page: Page): { readonly statuses: number[] } {
  const statuses: number[] = [];
  page.on('response', (response: Response) => {
    const url = new URL(response.url());
    if (url.origin === gateway.url) statuses.push(response.status());
  });
  return { statuses };
}

describe('silent session refresh', () => {
  let page: Page;
  let starts: { count: () => number };

  beforeAll(async () => {
    page = await context.newPage();
    starts = countRequestsTo(context, START_PATH);
    await loginFromDeepLink(page, gateway.url, '/dashboards/42', DEV_USERS.alice);
    await expect(field(page, 'user').textContent()).resolves.toBe('alice');
  });

  test('during navigation: the next page loads with a new session, no redirect, no 401', async () => {
    const expBefore = Number(await field(page, 'session-expires').locator('time').getAttribute('data-exp'));
    const requestIdBefore = await field(page, 'request-id').textContent();
    const idpBefore = await gateway.idp.stats();
    const watch = watchStatuses(page);
    await waitForRefreshWindow(page);

    await Promise.all([page.waitForURL(`${gateway.url}/browse/shared`), page.locator('a[href="/browse/shared"]').click()]);

    await expect(field(page, 'user').textContent()).resolves.toBe('alice');
    const expAfter = Number(await field(page, 'session-expires').locator('time').getAttribute('data-exp'));
    expect(expAfter).toBeGreaterThan(expBefore);
    expect(await field(page, 'request-id').textContent()).not.toBe(requestIdBefore);
    expect(watch.statuses).toEqual([200]);
    expect(starts.count()).toBe(1);
    const idpAfter = await gateway.idp.stats();
    expect(idpAfter.refreshes).toBeGreaterThan(idpBefore.refreshes);
    expect(idpAfter.failedRefreshes).toBe(idpBefore.failedRefreshes);
  });

  test("during a page's fetch() calls: the API answers 200 with a new session, even for parallel calls", async () => {
    const idpBefore = await gateway.idp.stats();
    await waitForRefreshWindow(page);

    const results = await page.evaluate(async () => {
      const calls = ['/api/4.0/user', '/api/4.0/looks', '/api/4.0/user', '/api/4.0/looks'].map(async (path) => {
        const res = await fetch(path, { headers: { accept: 'application/json' }, redirect: 'manual' });
        const body = (await res.json().catch(() => ({}))) as { request_id?: string; session_expires_at?: number };
        return { status: res.status, requestId: body.request_id ?? '', expiresAt: body.session_expires_at ?? 0 };
      });
      return Promise.all(calls);
    });

    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(new Set(results.map((r) => r.requestId)).size).toBe(4);
    const idpAfter = await gateway.idp.stats();
    expect(idpAfter.refreshes).toBeGreaterThan(idpBefore.refreshes);
    expect(idpAfter.failedRefreshes).toBe(idpBefore.failedRefreshes);
    expect(starts.count()).toBe(1);

    // The button on the page does the same through the UI.
    await waitForRefreshWindow(page);
    await page.locator('#call-api').click();
    const items = page.locator('#api-results li');
    await items.nth(1).waitFor();
    await expect(items.evaluateAll((list) => list.map((li) => (li as HTMLElement).dataset.status))).resolves.toEqual(['200', '200']);
  });
});
