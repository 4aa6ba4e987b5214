/**
 * The auth service: routes of the API Gateway REST proxy event to the OIDC login,
 * callback, refresh (navigation and inline), logout, JWKS and health endpoints.
 * Configuration is parsed once per container; an invalid one answers every request
 * with 503 and is logged once. This file builds the service and dispatches; the routes
 * live in service-*.ts by job: request (routes table, context, error answer), base
 * (wiring, cookies, minting), responses (failures), login, refresh, logout.
 */
import type { Context } from 'aws-lambda';
import { AUTH_PATHS } from '../../core/session-contract';
import { AuthServiceConfig, AuthServiceConfigError, parseAuthServiceEnvironment, type AuthServiceEnvironment } from '../../core/auth/environment';
import { LOOKER_BROKER_DISCOVERY_PATHS, LOOKER_BROKER_PATHS } from '../../core/auth/looker-broker';
import { Logger } from '../shared/audit';
import { jsonResponse, ProxyEvent, ProxyResult } from '../shared/http';
import type { AuthServiceDependencies } from './service-base';
import { AuthServiceLogout } from './service-logout';
import { errorAnswer, RequestContext, requestContext, resolveRoute } from './service-request';

export interface AuthService {
  handle(event: ProxyEvent, context?: Partial<Context>): Promise<ProxyResult>;
}

/** process.env, or a typed AuthServiceEnvironment. */
type Env = AuthServiceEnvironment | Readonly<Record<string, string | undefined>>;

/** Builds the service from its environment; never throws (an invalid configuration answers 503). */
export function createAuthService(env: Env, deps: AuthServiceDependencies): AuthService {
  const logger = new Logger(deps.logSink);
  let config: AuthServiceConfig;
  try {
    config = parseAuthServiceEnvironment(env as Readonly<Record<string, string | undefined>>);
  } catch (error) {
    const problems = error instanceof AuthServiceConfigError ? error.problems : [(error as Error).message];
    logger.log('error', 'The auth service configuration is invalid: every request is answered with 503 until it is fixed.', { problems });
    return new MisconfiguredAuthService(logger);
  }
  return new ConfiguredAuthService(config, deps, logger);
}

export { resolveRoute } from './service-request';
export type { AuthServiceDependencies } from './service-base';

class MisconfiguredAuthService implements AuthService {
  constructor(private readonly logger: Logger) {}

  async handle(event: ProxyEvent, context?: Partial<Context>): Promise<ProxyResult> {
    const ctx = requestContext(event, context, resolveRoute(event));
    this.logger.audit({ event: 'error', outcome: 'failure', reason: 'configuration-invalid', requestId: ctx.requestId, route: ctx.route, status: 503 });
    return errorAnswer(
      ctx,
      503,
      'service_misconfigured',
      'configuration-invalid',
      'The sign-in service configuration is invalid. The operator can find the reason in the auth service log.',
    );
  }
}

/** The service with a valid configuration: each route is a method of the layers it extends. */
class ConfiguredAuthService extends AuthServiceLogout implements AuthService {
  async handle(event: ProxyEvent, context?: Partial<Context>): Promise<ProxyResult> {
    const route = resolveRoute(event);
    const ctx = requestContext(event, context, route);
    try {
      return await this.dispatch(ctx, route, (event.httpMethod ?? 'GET').toUpperCase());
    } catch (error) {
      return this.unexpected(ctx, error);
    }
  }

  private dispatch(ctx: RequestContext, route: string | undefined, method: string): Promise<ProxyResult> | ProxyResult {
    const gate = (methods: string[], run: () => Promise<ProxyResult> | ProxyResult): Promise<ProxyResult> | ProxyResult => {
      if (methods.includes(method)) return run();
      const refused = errorAnswer(ctx, 405, 'method_not_allowed', 'method-not-allowed', `${route} does not accept ${method}; use ${methods.join(' or ')}.`);
      return { ...refused, headers: { ...refused.headers, Allow: methods.join(', ') } };
    };
    switch (route) {
      case AUTH_PATHS.health:
        return gate(['GET', 'HEAD'], () => jsonResponse(200, { status: 'ok' }));
      case AUTH_PATHS.jwks:
        return gate(['GET', 'HEAD'], () => this.jwks(ctx));
      case AUTH_PATHS.start:
        return gate(['GET', 'HEAD'], () => this.start(ctx));
      case AUTH_PATHS.callback:
        return gate(['GET'], () => this.callback(ctx));
      case AUTH_PATHS.refresh:
        return gate(['GET'], () => this.refreshNavigation(ctx));
      case AUTH_PATHS.session:
        return gate(['POST'], () => this.inlineRefresh(ctx));
      case AUTH_PATHS.logout:
        return gate(['GET', 'POST'], () => (method === 'POST' ? this.logout(ctx) : this.logoutPage(ctx)));
      case AUTH_PATHS.revocations:
        return gate(['GET', 'HEAD'], () => this.revocationList());
      case LOOKER_BROKER_PATHS.authorize:
      case LOOKER_BROKER_PATHS.token:
      case LOOKER_BROKER_PATHS.userinfo:
      case LOOKER_BROKER_DISCOVERY_PATHS[0]:
      case LOOKER_BROKER_DISCOVERY_PATHS[1]:
        return this.brokerRoute(ctx, route, gate);
      default:
        return errorAnswer(ctx, 404, 'not_found', 'unknown-route', `There is no sign-in endpoint at ${ctx.event.path ?? '?'}.`);
    }
  }

  private brokerRoute(
    ctx: RequestContext,
    route: string,
    gate: (methods: string[], run: () => Promise<ProxyResult> | ProxyResult) => Promise<ProxyResult> | ProxyResult,
  ) {
    const broker = this.broker;
    if (!broker)
      return errorAnswer(
        ctx,
        404,
        'not_found',
        'broker-mode-off',
        "Broker mode is off: this gateway is not configured as Looker's OpenID provider (LG_LOOKER_CLIENT_SECRET_ARN).",
      );
    const req = this.brokerRequest(ctx);
    if (route === LOOKER_BROKER_PATHS.authorize) return gate(['GET'], () => broker.authorize(req));
    if (route === LOOKER_BROKER_PATHS.token) return gate(['POST'], () => broker.token(req));
    // OpenID Connect Core 5.3.1: userinfo takes GET and POST.
    if (route === LOOKER_BROKER_PATHS.userinfo) return gate(['GET', 'POST'], () => broker.userinfo(req));
    return gate(['GET', 'HEAD'], () => broker.discovery());
  }
}

export { parseClientSecret } from './idp-credentials';
