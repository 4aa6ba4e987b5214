/**
 * The library imported by a separate CDK app through its public entry synthesizes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './fixtures';

jest.setTimeout(180_000);

test('test/fixtures/consumer-app synthesizes from lib/index.ts', () => {
  const outdir = mkdtempSync(path.join(tmpdir(), 'lg-consumer-'));
  try {
    const result = spawnSync('npx', ['tsx', 'test/fixtures/consumer-app/app.ts', outdir], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, JSII_DEPRECATED: 'quiet' },
    });
    expect({ status: result.status, stderr: result.status === 0 ? '' : result.stderr }).toEqual({ status: 0, stderr: '' });
    const templateFile = path.join(outdir, 'ConsumerStack.template.json');
    expect(existsSync(templateFile)).toBe(true);
    const template = JSON.parse(readFileSync(templateFile, 'utf8'));
    const types = Object.values(template.Resources as Record<string, { Type: string; Properties?: any }>);
    expect(types.some((r) => r.Type === 'AWS::ElasticLoadBalancingV2::LoadBalancer' && r.Properties.Scheme === 'internal')).toBe(true);
    // The consumer's Looker security group admits the gateway fleet on the web port only (HAProxy never routes to the API port).
    const lookerIngress = types.filter((r) => r.Type === 'AWS::EC2::SecurityGroupIngress' && JSON.stringify(r.Properties.GroupId).includes('LookerNodes'));
    expect(lookerIngress.map((r) => r.Properties.FromPort)).toEqual([9999]);
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
});
