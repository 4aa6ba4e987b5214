/**
 * The custom resource as it ships: the esbuild bundle of lambda/looker-oidc (the settings
 * of lib/private/lambda-bundling.ts), fed the `Settings` property of the template the
 * LookerOidcConfiguration construct synthesizes (intrinsics resolved as CloudFormation
 * would), against the Looker stand-in's API over HTTPS, with secrets from the stateful
 * Secrets Manager model. Answers go where CloudFormation documents them: a PUT of a JSON
 * body to the event's ResponseURL
 * (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html),
 * here a local server that records it.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { AddressInfo, createServer as createTcpServer, Server as TcpServer, Socket } from 'node:net';
import * as path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { LookerBackend } from '../../lib/looker/looker-backend';
import { LookerOidcConfiguration, LookerOidcSettings } from '../../lib/looker/looker-oidc-configuration';
import { LOOKER_API_PATHS } from '../../lib/looker/oidc-config';
import { REPO_ROOT } from '../../lib/private/lambda-bundling';
import { RunningLookerStandIn, startLookerStandIn } from '../../local/looker-stand-in';
import { createLocalPki, LocalPki } from '../../local/pki';
import { bundleLambda } from '../../scripts/bundle-lambdas';
import { captureLogs } from '../rotation/fixture';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from '../constructs/resolve';
import { installSecretsManagerFake, SecretsManagerModel } from '../support/secrets-manager-model';
import { createCa } from '../support/pki';

// The first test synthesizes a stack with a VPC (aws-cdk-lib loads then): about 16 s alone, several times that on two loaded cores.
jest.setTimeout(180_000);

const DOMAIN = 'looker.example.com';
const API_KEY = { client_id: 'admin-api-key', client_secret: `api-secret-${randomBytes(8).toString('hex')}` };
const CLIENT_SECRET = `oidc-client-secret-${randomBytes(12).toString('hex')}`;
const RULES = {
  rules: [
    { name: 'analysts', match: { groups: ['analysts'] }, grant: { roles: ['Viewer'], groups: ['Analysts'], attributes: { region: 'emea' } } },
    { name: 'admins', match: { groups: ['admins'] }, grant: { roles: ['Admin'], groups: ['Admins'] } },
  ],
};

type Handler = (event: CloudFormationCustomResourceEvent, context: { getRemainingTimeInMillis(): number }) => Promise<void>;

let dir: string;
let handler: Handler;
let pki: LocalPki;
let looker: RunningLookerStandIn;
let model: SecretsManagerModel;
let fake: ReturnType<typeof installSecretsManagerFake>;
let apiCredentialsArn: string;
let clientSecretArn: string;
let responses: http.Server;
const received = new Map<string, Record<string, any>>();
let hanging: TcpServer;
const hangingSockets = new Set<Socket>();

const savedRegion = process.env.AWS_REGION;

beforeAll(async () => {
  // The Lambda runtime always sets the function's region.
  process.env.AWS_REGION = 'eu-west-1';
  // Inside the repository, so the bundle's require('@aws-sdk/...') resolves to the SDK the test mocks
  // (.tmp, not .cache: a worktree's .cache may be a link to another checkout with its own node_modules).
  mkdirSync(path.join(REPO_ROOT, '.tmp'), { recursive: true });
  dir = mkdtempSync(path.join(REPO_ROOT, '.tmp', 'test-looker-oidc-bundle-'));
  const built = await bundleLambda('lookerOidc', dir);
  const file = path.join(dir, 'index.cjs');
  copyFileSync(built.file, file);
  handler = require(file).handler;

  pki = await createLocalPki();
  looker = await startLookerStandIn({ certPem: pki.looker.cert, keyPem: pki.looker.key, oidc: { apiCredentials: [API_KEY] } });
  model = new SecretsManagerModel();
  fake = installSecretsManagerFake(model);
  apiCredentialsArn = model.createSecret({ Name: 'looker/api-credentials', SecretString: JSON.stringify(API_KEY) }).ARN;
  clientSecretArn = model.createSecret({ Name: 'looker/oidc-client-secret', SecretString: CLIENT_SECRET }).ARN;

  responses = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      received.set(req.url ?? '', { method: req.method, contentType: req.headers['content-type'], ...JSON.parse(body) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => responses.listen(0, '127.0.0.1', resolve));
  // Accepts connections and never answers: a Looker that hangs.
  hanging = createTcpServer((socket) => {
    hangingSockets.add(socket);
    socket.on('close', () => hangingSockets.delete(socket));
  });
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  if (savedRegion === undefined) delete process.env.AWS_REGION;
  else process.env.AWS_REGION = savedRegion;
  fake?.restore();
  await looker?.stop();
  responses?.close();
  for (const socket of hangingSockets) socket.destroy();
  hanging?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Target {
  readonly port: number;
  readonly caPem?: string;
}

/** The `Settings` property of the synthesized custom resource, as the function receives it after CloudFormation resolved it. */
function settingsFromTemplate(settings: Partial<LookerOidcSettings> = {}, target: Target = { port: looker.port }): string {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'Test');
  const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
  const config = new LookerOidcConfiguration(stack, 'LookerOidc', {
    apiCredentials: secretsmanager.Secret.fromSecretCompleteArn(stack, 'ApiCredentials', apiCredentialsArn),
    groupRoles: [
      { group: 'Analysts', roles: ['Viewer'] },
      { group: 'Admins', roles: ['Admin'] },
    ],
    requestTimeout: Duration.seconds(2),
    ...settings,
    looker: LookerBackend.fromHosts(['127.0.0.1'], { apiPort: target.port, serverName: 'looker.local', caCertificatePem: target.caPem ?? pki.ca.cert }),
    domainName: DOMAIN,
    vpc,
    mappingRules: RULES,
  });
  const template = Template.fromStack(stack).toJSON() as { Resources: Record<string, { Type: string; Properties: any }> };
  const [, resource] = Object.entries(template.Resources).find(([, r]) => r.Type === 'Custom::LookerOidcConfiguration')!;
  const secretId = stack.getLogicalId(config.clientSecret.node.defaultChild as secretsmanager.CfnSecret);
  return resolveIntrinsics(resource.Properties.Settings, { ...FAKE_DEPLOYMENT, refs: { [secretId]: clientSecretArn } }, template) as string;
}

let invocation = 0;

/** Invokes the bundled handler with a CloudFormation event and returns the answer it PUT to the ResponseURL, and its log lines. */
async function invoke(
  requestType: 'Create' | 'Update' | 'Delete',
  settings: string,
  options: { physicalId?: string; remainingMs?: number } = {},
): Promise<{ answer: Record<string, any>; logs: string }> {
  invocation += 1;
  const responsePath = `/response/${invocation}`;
  const base = {
    ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:looker-oidc',
    ResponseURL: `http://127.0.0.1:${(responses.address() as AddressInfo).port}${responsePath}`,
    StackId: 'arn:aws:cloudformation:eu-west-1:123456789012:stack/Test/0000',
    RequestId: `request-${invocation}`,
    LogicalResourceId: 'LookerOidcResource',
    ResourceType: 'Custom::LookerOidcConfiguration',
    ResourceProperties: { ServiceToken: 'arn:aws:lambda:eu-west-1:123456789012:function:looker-oidc', Settings: settings },
  };
  const event = (
    requestType === 'Create'
      ? { ...base, RequestType: 'Create' }
      : requestType === 'Update'
        ? { ...base, RequestType: 'Update', PhysicalResourceId: options.physicalId!, OldResourceProperties: base.ResourceProperties }
        : { ...base, RequestType: 'Delete', PhysicalResourceId: options.physicalId! }
  ) as CloudFormationCustomResourceEvent;
  const remainingMs = options.remainingMs ?? 60_000;
  const { error, raw } = await captureLogs(() => handler(event, { getRemainingTimeInMillis: () => remainingMs }));
  if (error) throw error;
  const answer = received.get(responsePath);
  if (!answer) throw new Error(`The handler returned without answering at ${responsePath}.`);
  return { answer, logs: raw };
}

async function lookerConfig(): Promise<Record<string, any>> {
  return looker.oidcConfig.read() as Record<string, any>;
}

function expectNoSecretIn(text: string): void {
  for (const secret of [API_KEY.client_secret, CLIENT_SECRET]) expect(text).not.toContain(secret);
}

describe('Create and Update', () => {
  test('Create points Looker at the broker: URLs, client credentials, roles from groups (ids resolved from names), attributes, alternate login kept', async () => {
    const { answer, logs } = await invoke('Create', settingsFromTemplate());
    expect(answer).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: `looker-oidc:https://127.0.0.1:${looker.port}`, Data: { Issuer: `https://${DOMAIN}`, ClientId: 'looker' }, contentType: '' });
    const config = await lookerConfig();
    expect(config).toMatchObject({
      enabled: true,
      identifier: 'looker',
      audience: 'looker',
      issuer: `https://${DOMAIN}`,
      authorization_endpoint: `https://${DOMAIN}/oauth2/looker/authorize`,
      token_endpoint: `https://${DOMAIN}/oauth2/looker/token`,
      userinfo_endpoint: `https://${DOMAIN}/oauth2/looker/userinfo`,
      scopes: ['openid', 'email', 'profile'],
      user_attribute_map_email: 'email',
      user_attribute_map_first_name: 'given_name',
      user_attribute_map_last_name: 'family_name',
      groups_attribute: 'groups',
      set_roles_from_groups: true,
      auth_requires_role: true,
      groups_with_role_ids: [
        { name: 'Analysts', looker_group_name: 'Analysts', role_ids: ['5'] },
        { name: 'Admins', looker_group_name: 'Admins', role_ids: ['2'] },
      ],
      user_attributes_with_ids: [{ name: 'attr_region', required: false, user_attribute_ids: ['10'] }],
      new_user_migration_types: 'email',
      alternate_email_login_allowed: true,
    });
    expect(looker.oidcConfig.secretIs(CLIENT_SECRET)).toBe(true);
    expectNoSecretIn(logs + JSON.stringify(answer));
  });

  test('Update with the same settings twice writes the same state (idempotent) and keeps the physical id', async () => {
    const settings = settingsFromTemplate();
    const created = await invoke('Create', settings);
    const before = { ...(await lookerConfig()), modified_at: null };
    for (let i = 0; i < 2; i += 1) {
      const { answer } = await invoke('Update', settings, { physicalId: created.answer.PhysicalResourceId });
      expect(answer).toMatchObject({ Status: 'SUCCESS', PhysicalResourceId: created.answer.PhysicalResourceId });
      expect({ ...(await lookerConfig()), modified_at: null }).toEqual(before);
    }
  });

  test('Update with other groups replaces the mapping (lists are written whole, nothing stale stays)', async () => {
    const created = await invoke('Create', settingsFromTemplate());
    const { answer } = await invoke('Update', settingsFromTemplate({ groupRoles: [{ group: 'Analysts', roles: ['Viewer', 'User'] }] }), { physicalId: created.answer.PhysicalResourceId });
    expect(answer.Status).toBe('SUCCESS');
    expect((await lookerConfig()).groups_with_role_ids).toEqual([{ name: 'Analysts', looker_group_name: 'Analysts', role_ids: ['5', '4'] }]);
  });

  test('a role name Looker does not have fails with the names it has, and Looker is left unchanged', async () => {
    await invoke('Create', settingsFromTemplate());
    const before = await lookerConfig();
    const { answer } = await invoke('Create', settingsFromTemplate({ groupRoles: [{ group: 'Analysts', roles: ['Superhero'] }] }));
    expect(answer).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'looker-oidc-not-configured' });
    expect(answer.Reason).toContain('Looker has no role named "Superhero" (it has: "Admin", "Developer", "User", "Viewer")');
    expect(await lookerConfig()).toEqual(before);
  });
});

describe('Delete', () => {
  test('switches Looker\'s OIDC login off and keeps the rest; a second Delete leaves it alone', async () => {
    const created = await invoke('Create', settingsFromTemplate());
    const { answer } = await invoke('Delete', settingsFromTemplate(), { physicalId: created.answer.PhysicalResourceId });
    expect(answer.Status).toBe('SUCCESS');
    expect(await lookerConfig()).toMatchObject({ enabled: false, issuer: `https://${DOMAIN}`, alternate_email_login_allowed: true });
    const again = await invoke('Delete', settingsFromTemplate(), { physicalId: created.answer.PhysicalResourceId });
    expect(again.answer.Status).toBe('SUCCESS');
    expect(again.logs).toContain('"outcome":"left-alone"');
  });

  test('leaves Looker alone when an admin has pointed it at another provider since', async () => {
    const created = await invoke('Create', settingsFromTemplate());
    expect(looker.oidcConfig.patch({ issuer: 'https://login.other.example', identifier: 'other-client' }).ok).toBe(true);
    const { answer } = await invoke('Delete', settingsFromTemplate(), { physicalId: created.answer.PhysicalResourceId });
    expect(answer.Status).toBe('SUCCESS');
    expect(await lookerConfig()).toMatchObject({ enabled: true, issuer: 'https://login.other.example' });
  });

  test('the Delete of a Create that failed answers at once without calling Looker (no stuck rollback)', async () => {
    const failed = await invoke('Create', settingsFromTemplate({}, { port: hangingPort() }));
    expect(failed.answer).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'looker-oidc-not-configured' });
    const seen = looker.requests.length;
    const { answer } = await invoke('Delete', settingsFromTemplate({}, { port: hangingPort() }), { physicalId: failed.answer.PhysicalResourceId });
    expect(answer.Status).toBe('SUCCESS');
    expect(looker.requests.length).toBe(seen);
  });
});

function hangingPort(): number {
  return (hanging.address() as AddressInfo).port;
}

describe('clear failures, never a secret', () => {
  test('wrong API3 credentials: FAILED with the fix; neither secret in the answer or the logs', async () => {
    const wrongArn = model.createSecret({ Name: `looker/wrong-${invocation}`, SecretString: JSON.stringify({ client_id: API_KEY.client_id, client_secret: 'wrong-api-secret-value' }) }).ARN;
    const { answer, logs } = await invoke('Create', settingsFromTemplate({ apiCredentials: secretsmanager.Secret.fromSecretCompleteArn(new Stack(), 'Wrong', wrongArn) }));
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('Looker refused the API3 credentials');
    expect(answer.Reason).toContain(`HTTP 404 at POST ${LOOKER_API_PATHS.login}`);
    expectNoSecretIn(logs + JSON.stringify(answer));
    expect(logs + JSON.stringify(answer)).not.toContain('wrong-api-secret-value');
  });

  test('a credentials secret that is not the documented JSON: FAILED naming the expected shape', async () => {
    const plainArn = model.createSecret({ Name: `looker/plain-${invocation}`, SecretString: 'just-a-password' }).ARN;
    const { answer, logs } = await invoke('Create', settingsFromTemplate({ apiCredentials: secretsmanager.Secret.fromSecretCompleteArn(new Stack(), 'Plain', plainArn) }));
    expect(answer.Reason).toContain('is not JSON: store {"client_id": "...", "client_secret": "..."}');
    expect(logs + JSON.stringify(answer)).not.toContain('just-a-password');
  });

  test('a Looker that accepts the connection and never answers: FAILED after the request deadline, with what to check', async () => {
    const started = Date.now();
    const { answer } = await invoke('Create', settingsFromTemplate({}, { port: hangingPort() }));
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('did not answer POST https://127.0.0.1:');
    expect(answer.Reason).toContain('within 2 s');
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  test('nothing listening: FAILED naming the connection error', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const { answer } = await invoke('Create', settingsFromTemplate({}, { port }));
    expect(answer.Reason).toContain('ECONNREFUSED');
  });

  test('Looker\'s certificate from another CA: FAILED with the TLS cause and the fix', async () => {
    const otherCa = await createCa('Some Other CA');
    const { answer } = await invoke('Create', settingsFromTemplate({}, { port: looker.port, caPem: otherCa.cert }));
    expect(answer.Reason).toMatch(/TLS to Looker's API failed .*caCertificatePem/);
  });

  test('Looker refuses the configuration (422): FAILED with Looker\'s field errors', async () => {
    // A value the construct would refuse at synth, to reach Looker's own validation.
    const settings = JSON.parse(settingsFromTemplate());
    const { answer } = await invoke('Create', JSON.stringify({ ...settings, migrationTypes: ['carrier-pigeon'] }));
    expect(answer.Status).toBe('FAILED');
    expect(answer.Reason).toContain('Looker refused the OIDC configuration (422 Validation Failed)');
    expect(answer.Reason).toContain('new_user_migration_types: "carrier-pigeon" is not one of email, ldap, google, saml');
  });

  test('the function\'s time runs out before Looker answers: it still answers CloudFormation, FAILED, before the timeout', async () => {
    const started = Date.now();
    const settings = JSON.parse(settingsFromTemplate({}, { port: hangingPort() }));
    const { answer } = await invoke('Update', JSON.stringify({ ...settings, requestTimeoutSeconds: 30 }), { physicalId: 'looker-oidc:previous', remainingMs: 6_500 });
    expect(answer).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'looker-oidc:previous' });
    expect(answer.Reason).toContain('did not finish within 2 s');
    expect(Date.now() - started).toBeLessThan(6_500);
  });

  test('settings that are not the construct\'s JSON: FAILED naming the field', async () => {
    const { answer } = await invoke('Create', JSON.stringify({ apiUrl: 'https://x' }));
    expect(answer.Reason).toContain('"apiCredentialsSecretArn" must be a non-empty string');
  });
});
