/**
 * AWS Control Tower proactive controls on the deployable stack, as Control Tower runs them:
 * the published CloudFormation Guard rules (bundled with their guard binary by
 * @cdklabs/cdk-validator-cfnguard), evaluated as a CloudFormation hook evaluates them, one
 * resource at a time with CloudFormation's functions resolved ("AWS::<Type>" ->
 * resourceProperties, the hook input the rules read). docs/control-tower.md lists every
 * control that applies, with its status; this test holds the table to the rules.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CfnGuardValidator } from '@cdklabs/cdk-validator-cfnguard';
import { newGatewayStack, REPO_ROOT } from './fixtures';
import { FAKE_DEPLOYMENT, resolveIntrinsics } from './resolve';

jest.setTimeout(180_000);

interface Template {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

const RULES_DIR = path.join(path.dirname(require.resolve('@cdklabs/cdk-validator-cfnguard/package.json')), 'rules', 'control-tower');

let workDir: string;
let templates: Record<string, Template>;

/** Control id -> the resource types it evaluates, from the rules' own metadata. */
function publishedControls(): Map<string, string[]> {
  const controls = new Map<string, string[]>();
  const dir = path.join(RULES_DIR, 'metadata');
  for (const service of readdirSync(dir)) {
    for (const file of readdirSync(path.join(dir, service))) {
      const metadata = JSON.parse(readFileSync(path.join(dir, service, file), 'utf8')) as { Id: string; EvaluatedResourceTypes: string[]; Behavior: string };
      if (metadata.Behavior === 'PROACTIVE') controls.set(metadata.Id, metadata.EvaluatedResourceTypes);
    }
  }
  return controls;
}

/** Runs the rules on hook documents (one per resource); returns the failing control ids with their resources. */
function failingControls(resources: Template['Resources'], template: Template = { Resources: resources }): Map<string, string[]> {
  const files = Object.entries(resources).map(([id, resource]) => {
    const file = path.join(workDir, `${id}.json`);
    writeFileSync(file, JSON.stringify({ [resource.Type]: { resourceProperties: resolveIntrinsics(resource.Properties ?? {}, FAKE_DEPLOYMENT, template) } }));
    return file;
  });
  const report = new CfnGuardValidator().validate({ templatePaths: files } as unknown as Parameters<CfnGuardValidator['validate']>[0]);
  const failing = new Map<string, string[]>();
  for (const violation of report.violations) {
    const id = /\[(CT\.[A-Z0-9-]+\.PR\.\d+)\]/.exec(violation.description ?? '')?.[1];
    if (!id) throw new Error(`a violation without a control id: ${violation.ruleName} ${violation.description}`);
    failing.set(id, [...(failing.get(id) ?? []), ...violation.violatingResources.map((r) => path.basename(r.templatePath, '.json'))]);
  }
  return failing;
}

/** The table of docs/control-tower.md: control id -> status and reason. */
function documentedControls(): Map<string, { status: string; reason: string }> {
  const rows = readFileSync(path.join(REPO_ROOT, 'docs', 'control-tower.md'), 'utf8')
    .split('\n')
    .filter((line) => /^\| CT\./.test(line))
    .map((line) => line.split('|').map((cell) => cell.trim()));
  return new Map(rows.map(([, id, status, , reason]) => [id, { status, reason }]));
}

/**
 * The deployable stack in both shapes a user gets from cdk.json: without a hosted zone (the
 * example) and with hostedZoneId/hostedZoneName (an exportable ACM certificate and DNS
 * records). A control applies when it evaluates a resource of either.
 */
const VARIANTS: Record<string, Record<string, unknown>> = {
  example: {},
  hostedZone: { hostedZoneId: 'Z0123456789ABCDEFGHIJ', hostedZoneName: 'example.com' },
};

beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'lg-control-tower-'));
  templates = Object.fromEntries(
    Object.entries(VARIANTS).map(([name, context]) => {
      const { app, stack } = newGatewayStack({ context });
      return [name, app.synth().getStackByName(stack.stackName).template as Template];
    }),
  );
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

test('the hook harness fails a resource that breaks a control (a log group kept 3 months)', () => {
  const failing = failingControls({
    ShortLogs: { Type: 'AWS::Logs::LogGroup', Properties: { RetentionInDays: 90, KmsKeyId: 'arn:aws:kms:eu-west-1:123456789012:key/abc' } },
  });
  expect([...failing.keys()]).toEqual(['CT.CLOUDWATCH.PR.2']);
});

test("docs/control-tower.md lists exactly the proactive controls that evaluate the stack's resource types", () => {
  const types = new Set(Object.values(templates).flatMap((template) => Object.values(template.Resources).map((r) => r.Type)));
  expect(types.has('AWS::CertificateManager::Certificate')).toBe(true);
  const applicable = [...publishedControls()].filter(([, evaluated]) => evaluated.some((type) => types.has(type))).map(([id]) => id);
  expect([...documentedControls().keys()].sort()).toEqual(applicable.sort());
  for (const [id, { status, reason }] of documentedControls()) {
    expect([id, ['met', 'n/a', 'does not fit'].includes(status)]).toEqual([id, true]);
    if (status !== 'met') expect([id, reason.length > 20]).toEqual([id, true]);
  }
});

test.each(Object.keys(VARIANTS))('the stack (%s) passes every control marked met or n/a, and fails exactly those that do not fit', (variant) => {
  const template = templates[variant];
  const failing = failingControls(template.Resources, template);
  const documented = documentedControls();
  const doesNotFit = [...documented].filter(([, row]) => row.status === 'does not fit').map(([id]) => id);
  expect(Object.fromEntries([...failing.keys()].map((id) => [id, documented.get(id)?.status ?? 'undocumented']))).toEqual(
    Object.fromEntries(doesNotFit.map((id) => [id, 'does not fit'])),
  );
  // The one that does not fit fails only on the load balancer.
  expect(failing.get('CT.ELASTICLOADBALANCING.PR.6')).toEqual([expect.stringMatching(/^GatewayFleetLoadBalancer/)]);
});
