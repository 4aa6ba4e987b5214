/**
 * Shared GIVENs of the construct tests: a stack with the example settings of cdk.json,
 * synthesized without bundling unless a test asks for it.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { MappingRuleSet } from '../../core/auth/mapping-rules';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerGateway, LookerGatewayProps } from '../../lib/looker-gateway';
import { GatewayAppSettings, LookerGatewayStack, settingsFromContext } from '../../lib/stack';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** The "context" of the repository's cdk.json: the defaults a fresh clone synthesizes with. */
export function defaultContext(): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')).context;
}

export interface TestAppOptions {
  /** Bundle the Lambda functions (slow). @default false */
  readonly bundle?: boolean;
  readonly context?: Record<string, unknown>;
  readonly outdir?: string;
}

export function newTestApp(options: TestAppOptions = {}): App {
  return new App({
    outdir: options.outdir,
    context: {
      ...defaultContext(),
      'aws:cdk:enable-path-metadata': true,
      ...(options.bundle ? {} : { 'aws:cdk:bundling-stacks': [] }),
      ...options.context,
    },
  });
}

/** The deployable stack exactly as bin/app.ts makes it, from the example context plus overrides. */
export function newGatewayStack(options: TestAppOptions & { settings?: Partial<GatewayAppSettings> } = {}): { app: App; stack: LookerGatewayStack } {
  const app = newTestApp(options);
  const settings = { ...settingsFromContext(app.node), ...options.settings };
  const stack = new LookerGatewayStack(app, 'LookerGateway', { settings });
  return { app, stack };
}

export function newEmptyStack(options: TestAppOptions = {}): Stack {
  return new Stack(newTestApp(options), 'Test');
}

/** Rules that admit everyone at example.com as a Viewer: the minimal gateway's. */
export const RULES: MappingRuleSet = { rules: [{ name: 'everyone-at-example', match: { emailDomains: ['example.com'] }, grant: { roles: ['Viewer'] } }] };

/** A LookerGateway with the minimal required props, plus `overrides`, in `stack`. */
export function newTestGateway(overrides: Partial<LookerGatewayProps> = {}, stack: Stack = newEmptyStack()): LookerGateway {
  return new LookerGateway(stack, 'Gateway', {
    domainName: 'looker.example.com',
    identityProvider: {
      issuer: 'https://login.example.com',
      clientId: 'gateway',
      clientSecret: secretsmanager.Secret.fromSecretNameV2(stack, 'ClientSecret', 'idp-client-secret'),
    },
    mappingRules: RULES,
    looker: LookerBackend.fromDnsName('looker.internal.example.com'),
    ...overrides,
  });
}
