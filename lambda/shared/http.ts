/**
 * Thin helpers over API Gateway REST proxy events and results: header and cookie
 * reading (multiValueHeaders aware), cookie writing, and small HTML/JSON answers.
 */
import type { APIGatewayProxyEvent, APIGatewayProxyResult } from 'aws-lambda';

export type ProxyEvent = APIGatewayProxyEvent;
export type ProxyResult = APIGatewayProxyResult;

/** Every value of a header, case-insensitive, from both `multiValueHeaders` and `headers`. */
export function headerValues(event: ProxyEvent, name: string): string[] {
  const wanted = name.toLowerCase();
  const values: string[] = [];
  for (const [key, list] of Object.entries(event.multiValueHeaders ?? {})) {
    if (key.toLowerCase() === wanted && list) values.push(...list);
  }
  if (values.length === 0) {
    for (const [key, value] of Object.entries(event.headers ?? {})) {
      if (key.toLowerCase() === wanted && value !== undefined) values.push(value);
    }
  }
  return values;
}

export function header(event: ProxyEvent, name: string): string | undefined {
  const values = headerValues(event, name);
  return values.length > 0 ? values.join(', ') : undefined;
}

/** The request's cookies (all Cookie headers); the first occurrence of a name wins. */
export function requestCookies(event: ProxyEvent): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const line of headerValues(event, 'cookie')) {
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq <= 0) continue;
      const name = part.slice(0, eq).trim();
      let value = part.slice(eq + 1).trim();
      if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
      if (!cookies.has(name)) cookies.set(name, value);
    }
  }
  return cookies;
}

/** One query parameter (the first value), as API Gateway decoded it. */
export function queryParam(event: ProxyEvent, name: string): string | undefined {
  const multi = event.multiValueQueryStringParameters?.[name];
  if (multi && multi.length > 0) return multi[0];
  return event.queryStringParameters?.[name] ?? undefined;
}

/** The query string rebuilt from the decoded parameters (API Gateway does not pass the raw one). */
export function queryString(event: ProxyEvent): string {
  const params = new URLSearchParams();
  const multi = event.multiValueQueryStringParameters;
  if (multi) {
    for (const [name, values] of Object.entries(multi)) for (const value of values ?? []) params.append(name, value);
  } else {
    for (const [name, value] of Object.entries(event.queryStringParameters ?? {})) if (value !== undefined) params.append(name, value);
  }
  return params.toString();
}

export function requestBody(event: ProxyEvent): string {
  if (!event.body) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

export interface CookieOptions {
  /** Seconds; 0 deletes the cookie. */
  readonly maxAgeSeconds: number;
}

/** A `__Host-`-compatible cookie: Secure, HttpOnly, SameSite=Lax, Path=/, no Domain. */
export function setCookie(name: string, value: string, options: CookieOptions): string {
  return `${name}=${value}; Path=/; Max-Age=${Math.max(0, Math.floor(options.maxAgeSeconds))}; Secure; HttpOnly; SameSite=Lax`;
}

export function clearCookie(name: string): string {
  return setCookie(name, '', { maxAgeSeconds: 0 });
}

export interface ResponseParts {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly cookies?: readonly string[];
  readonly body?: string;
}

const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

export function response(parts: ResponseParts): ProxyResult {
  const headers: Record<string, string> = { ...NO_STORE, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', ...(parts.headers ?? {}) };
  const result: ProxyResult = { statusCode: parts.status, headers, body: parts.body ?? '' };
  if (parts.cookies && parts.cookies.length > 0) result.multiValueHeaders = { 'Set-Cookie': [...parts.cookies] };
  return result;
}

export function jsonResponse(status: number, value: unknown, extra: Omit<ResponseParts, 'status' | 'body'> = {}): ProxyResult {
  return response({ ...extra, status, headers: { 'Content-Type': 'application/json; charset=utf-8', ...(extra.headers ?? {}) }, body: JSON.stringify(value) });
}

// No `form-action`: browsers apply it to the redirects after a form POST too, and the
// logout form's POST is answered with a redirect to the IdP's end-session endpoint.
const HTML_SECURITY_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
  'X-Frame-Options': 'DENY',
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);
}

/** A small page: title, message (escaped) and trusted extra HTML (links, forms). */
export function htmlPage(status: number, title: string, message: string, extraHtml = '', extra: Omit<ResponseParts, 'status' | 'body'> = {}): ProxyResult {
  const body = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}small{color:#666}</style></head>
<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${extraHtml}</body></html>`;
  return response({ ...extra, status, headers: { ...HTML_SECURITY_HEADERS, ...(extra.headers ?? {}) }, body });
}

export function redirect(location: string, cookies: readonly string[] = [], status = 302): ProxyResult {
  return response({ status, headers: { Location: location }, cookies });
}
