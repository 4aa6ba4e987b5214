/**
 * haproxy.cfg for the gateway, rendered from validated options. Pure: the same options
 * always give the same text. Read the output top to bottom: each section says why. Each
 * part lives in a module of its own (global, logging, frontend and its hygiene, session,
 * refresh and machine-client rules, listeners, the plain HTTP redirect, backends).
 */
import * as path from 'node:path';
import { renderAuthBackend, renderLookerBackend, renderTables } from './backends';
import { renderGatewayFrontend } from './frontend';
import { renderDefaults, renderGlobal, renderResolvers } from './global';
import { renderHealthFrontend, renderMetricsFrontend, renderRefreshRelay } from './listeners';
import { renderErrors } from './logging';
import { renderHttpRedirectFrontend } from './redirect';
import { ResolvedGatewayOptions } from './validate';

export function renderHaproxyConfig(o: ResolvedGatewayOptions): string {
  const file = (relative: string) => path.posix.join(o.configDir, relative);
  const sections = [
    renderGlobal(o, file),
    renderDefaults(),
    renderErrors(file),
    ...(o.usesDns ? [renderResolvers(o)] : []),
    renderGatewayFrontend(o, file),
    ...(o.httpRedirect ? [renderHttpRedirectFrontend(o)] : []),
    renderHealthFrontend(o),
    renderMetricsFrontend(o),
    renderRefreshRelay(o),
    renderLookerBackend(o, file),
    renderAuthBackend(o, file),
    renderTables(o),
  ];
  return `# haproxy.cfg of the Looker gateway, rendered by cdk-looker-gateway (core/haproxy).\n# Do not edit on an instance: change the options and render again.\n\n${sections.map(String).join('\n\n')}\n`;
}
