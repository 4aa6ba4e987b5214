/**
 * Synth-time checks of construct props. Every error names the prop, the bad value and
 * the fix. Values that are unresolved tokens are not known at synth and are skipped.
 */
import { Duration, Token } from 'aws-cdk-lib';
import { isHostName, isIpv4Address } from '../../core/net';

/**
 * A prop that cannot work, found at synth: the message names the construct, the prop, the
 * value and the fix. Not exported from the package entry (jsii cannot expose a subclass of
 * Error); callers recognise it by `error.name === 'GatewayPropsError'`.
 */
export class GatewayPropsError extends Error {
  constructor(where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = 'GatewayPropsError';
  }
}

export function assertDomainName(where: string, prop: string, value: string): void {
  if (Token.isUnresolved(value)) return;
  if (!isHostName(value) || isIpv4Address(value)) {
    throw new GatewayPropsError(
      where,
      `${prop} ${JSON.stringify(value)} is not a fully qualified domain name. Give the host name users open in the browser, for example "looker.example.com" (no scheme, no path, no port).`,
    );
  }
}

export function assertHttpsUrl(where: string, prop: string, value: string): void {
  if (Token.isUnresolved(value)) return;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new GatewayPropsError(
      where,
      `${prop} ${JSON.stringify(value)} is not a URL. Give the IdP's issuer URL exactly as its discovery document states, for example "https://login.example.com/oauth2/default".`,
    );
  }
  if (url.protocol !== 'https:') {
    throw new GatewayPropsError(
      where,
      `${prop} ${JSON.stringify(value)} must use https: (OpenID Connect issuers are HTTPS-only and openid-client refuses plain HTTP). Use the https:// issuer URL from the IdP's /.well-known/openid-configuration.`,
    );
  }
  if (url.search || url.hash) {
    throw new GatewayPropsError(where, `${prop} ${JSON.stringify(value)} must not have a query or fragment: an OpenID issuer is a plain https URL.`);
  }
}

export function assertNonEmptyString(where: string, prop: string, value: string): void {
  if (Token.isUnresolved(value)) return;
  if (value.trim().length === 0) {
    throw new GatewayPropsError(where, `${prop} is empty. Give the value from your IdP's application settings.`);
  }
}

export function assertIntegerInRange(where: string, prop: string, value: number, min: number, max: number, fix: string): void {
  if (Token.isUnresolved(value)) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new GatewayPropsError(where, `${prop} is ${value}; it must be a whole number from ${min} to ${max}. ${fix}`);
  }
}

export function assertDurationInRange(where: string, prop: string, value: Duration, min: Duration, max: Duration, fix: string): void {
  if (value.isUnresolved()) return;
  const seconds = value.toSeconds();
  if (seconds < min.toSeconds() || seconds > max.toSeconds()) {
    throw new GatewayPropsError(where, `${prop} is ${value.toHumanString()}; it must be from ${min.toHumanString()} to ${max.toHumanString()}. ${fix}`);
  }
}

export function assertPort(where: string, prop: string, value: number): void {
  assertIntegerInRange(where, prop, value, 1, 65535, 'Use a TCP port number.');
}
