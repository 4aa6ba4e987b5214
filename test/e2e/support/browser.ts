/**
 * Debian's Chromium, headless, driven by playwright-core, with the flags a closed
 * network needs. The gateway's certificates are trusted by their public-key hashes
 * (`--ignore-certificate-errors-spki-list`), so pages are real https origins for
 * `__Host-` Secure cookies, without turning every certificate check off.
 */
import { existsSync } from 'node:fs';
import { Browser, BrowserContext, chromium, Page } from 'playwright-core';
import { VIEWPORT } from './flows';

export const CHROMIUM = process.env.LG_CHROMIUM ?? '/usr/bin/chromium';

const CLOSED_NETWORK_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches Chromium trusting the given SPKI hashes (base64 SHA-256). Playwright gives
 * every launch a fresh temporary user-data dir and every context its own cookie jar.
 */
export function launchChromium(trustedSpkiHashes: readonly string[]): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `No Chromium at ${CHROMIUM}: run "bash scripts/install-test-deps.sh" (installs Debian's chromium), or set LG_CHROMIUM to a Chromium binary.`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [...CLOSED_NETWORK_FLAGS, `--ignore-certificate-errors-spki-list=${trustedSpkiHashes.join(',')}`],
  });
}

/**
 * A page in a new context with the screenshots' fixed viewport, locale and time zone; the
 * context is added to `contexts`, which the test file closes in its afterAll.
 */
export async function newPage(browser: Browser, contexts: BrowserContext[]): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'UTC' });
  contexts.push(context);
  return { context, page: await context.newPage() };
}
