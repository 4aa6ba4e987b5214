/**
 * Browser steps the end-to-end tests share: logging in at the dev IdP's form, and
 * reading what the Looker stand-in page shows.
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { BrowserContext, Locator, Page } from 'playwright-core';
import { AUTH_PATHS } from '../../../core/session-contract';
import { DevUser } from '../../../dev/stand-ins/idp/dev-users';

export const SCREENSHOT_DIR = path.resolve(__dirname, '..', '..', '..', 'docs', 'images');
/** A fixed viewport and scale, so screenshots are the same from run to run. */
export const VIEWPORT = { width: 960, height: 640 };

/** Fills and submits the dev IdP's login form on the current page. */
export async function submitLogin(page: Page, user: Pick<DevUser, 'username' | 'password'>): Promise<void> {
  await page.locator('#username').fill(user.username);
  await page.locator('#password').fill(user.password);
  await Promise.all([page.waitForEvent('load'), page.locator('button[type=submit]').first().click()]);
}

/** Opens `deepLink` on the gateway, expects the IdP's login form, logs in and waits for the page after it. */
export async function loginFromDeepLink(page: Page, gatewayUrl: string, deepLink: string, user: Pick<DevUser, 'username' | 'password'>): Promise<void> {
  await page.goto(`${gatewayUrl}${deepLink}`);
  await page.locator('#username').waitFor();
  await submitLogin(page, user);
}

/** Counts the requests of a context whose path is `path` (for example /oauth2/start). */
export function countRequestsTo(context: BrowserContext, pathname: string): { readonly count: () => number } {
  let count = 0;
  context.on('request', (request) => {
    if (new URL(request.url()).pathname === pathname) count += 1;
  });
  return { count: () => count };
}

export const START_PATH = AUTH_PATHS.start;

/** The text of one identity field of the Looker stand-in page (`data-field`). */
export function field(page: Page, name: string): Locator {
  return page.locator(`[data-field="${name}"]`);
}

/** Writes a screenshot under docs/images, masking values that change between runs. */
export async function screenshot(page: Page, name: string, mask: Locator[] = []): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, name), fullPage: false, animations: 'disabled', caret: 'hide', mask, maskColor: '#e5e7eb' });
}
