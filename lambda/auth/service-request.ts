/**
 * The auth service's routes table and what every handler starts from: the route of an API
 * Gateway proxy event, the request context (request id, browser or API client, source
 * address), and the error answer (an HTML page for a browser, JSON otherwise).
 */
import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { AUTH_PATHS } from '../../core/session-contract';
import { type MappingGrant } from '../../core/auth/mapping-rules';
import { LOOKER_BROKER_DISCOVERY_PATHS, LOOKER_BROKER_PATHS } from '../../core/auth/looker-broker';
import { AuditEvent } from '../shared/audit';
import { escapeHtml, header, htmlPage, jsonResponse, ProxyEvent, ProxyResult } from '../shared/http';

export const ROUTES: readonly string[] = [...Object.values(AUTH_PATHS), ...Object.values(LOOKER_BROKER_PATHS), ...LOOKER_BROKER_DISCOVERY_PATHS];

/**
 * The service route of an event, with or without a stage or base-path prefix: from the
 * `{proxy+}` resource and its parameter, a literal resource, the path, or the stage path.
 */
export function resolveRoute(event: Pick<ProxyEvent, 'path' | 'resource' | 'pathParameters' | 'requestContext'>): string | undefined {
  const candidates: string[] = [];
  const proxy = event.pathParameters?.proxy;
  if (event.resource?.includes('{proxy+}') && proxy !== undefined) candidates.push(event.resource.replace('{proxy+}', proxy));
  if (event.resource && !event.resource.includes('{')) candidates.push(event.resource);
  if (event.path) candidates.push(event.path);
  if (event.requestContext?.path) candidates.push(event.requestContext.path);
  for (const candidate of candidates) {
    const trimmed = candidate.length > 1 ? candidate.replace(/\/+$/, '') : candidate;
    const route = ROUTES.find((r) => trimmed === r || trimmed.endsWith(r));
    if (route) return route;
  }
  return undefined;
}

export interface RequestContext {
  readonly event: ProxyEvent;
  readonly route: string;
  readonly requestId: string;
  readonly browser: boolean;
  readonly sourceIp?: string;
}

const REQUEST_ID = /^[A-Za-z0-9._:@+=-]{1,128}$/;

export function requestContext(event: ProxyEvent, context: Partial<Context> | undefined, route: string | undefined): RequestContext {
  const fromHeader = header(event, 'x-request-id');
  const requestId = fromHeader && REQUEST_ID.test(fromHeader) ? fromHeader : (event.requestContext?.requestId ?? context?.awsRequestId ?? randomUUID());
  const accept = header(event, 'accept') ?? '';
  const browser = route !== AUTH_PATHS.session && (header(event, 'sec-fetch-mode') === 'navigate' || accept.includes('text/html'));
  const forwarded = header(event, 'x-forwarded-for')?.split(',')[0]?.trim();
  return { event, route: route ?? event.path ?? '', requestId, browser, sourceIp: forwarded || event.requestContext?.identity?.sourceIp || undefined };
}

export function errorAnswer(
  ctx: RequestContext,
  status: number,
  code: string,
  reason: string,
  message: string,
  cookies: readonly string[] = [],
  extraHtml = '',
): ProxyResult {
  if (ctx.browser) {
    const title = status === 403 ? 'Access denied' : status >= 500 ? 'Sign-in is unavailable' : 'Sign-in failed';
    return htmlPage(status, title, message, `${extraHtml}<p><small>Reason: ${escapeHtml(reason)}. Request id: ${escapeHtml(ctx.requestId)}</small></p>`, {
      cookies,
    });
  }
  return jsonResponse(status, { error: code, reason, message, requestId: ctx.requestId }, { cookies });
}

/** The audit fields of a granted mapping decision. */
export function grantFields(grant: MappingGrant): Pick<AuditEvent, 'matchedRules' | 'roles' | 'groups' | 'attributes'> {
  return { matchedRules: grant.matchedRules, roles: grant.roles, groups: grant.groups, attributes: grant.attributes };
}
