/**
 * The package step of the user data (step 1 of renderBootstrapScript, the lines the
 * template carries) while something else holds the dpkg lock, as Debian's apt-daily /
 * unattended-upgrades units may on an instance's first boot. It runs in the Debian 13 root
 * (under an overlay, in a private mount namespace) against a local apt repository with a
 * probe package, so no network is needed; another apt-get holds the lock for a few seconds
 * (a DPkg::Pre-Invoke hook that sleeps runs while apt holds /var/lib/dpkg/lock-frontend).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DPKG_LOCK_TIMEOUT_SECONDS, renderBootstrapScript } from '../../lib/fleet/user-data';
import { TRIXIE_ROOT } from '../support/haproxy';

jest.setTimeout(120_000);

let workDir: string;

function buildDeb(dir: string, name: string): { file: string; stanza: string } {
  const root = path.join(dir, name);
  mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  mkdirSync(path.join(root, 'usr', 'share', 'doc', name), { recursive: true });
  writeFileSync(path.join(root, 'usr', 'share', 'doc', name, 'README'), `${name}\n`);
  writeFileSync(path.join(root, 'DEBIAN', 'control'), `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.com>\nDescription: ${name} for the dpkg lock test\n`);
  const file = `${name}_1.0_all.deb`;
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', root, path.join(dir, 'repo', file)], { stdio: 'ignore' });
  const bytes = readFileSync(path.join(dir, 'repo', file));
  const stanza = [
    `Package: ${name}`,
    'Version: 1.0',
    'Architecture: all',
    'Maintainer: Test <test@example.com>',
    `Filename: ./${file}`,
    `Size: ${statSync(path.join(dir, 'repo', file)).size}`,
    `SHA256: ${createHash('sha256').update(bytes).digest('hex')}`,
    `Description: ${name} for the dpkg lock test`,
    '',
  ].join('\n');
  return { file, stanza };
}

/** The rendered user data up to its step 2: the shell setup and the package step, as shipped. */
function packageStep(packages: string[]): string {
  const script = renderBootstrapScript({
    region: 'eu-west-1',
    stackName: 'PackagesTest',
    filesResourceId: 'LaunchTemplate',
    signalResourceId: 'Group',
    filesDigest: 'test',
    packages,
    cloudWatchAgentConfigPath: '/opt/aws/amazon-cloudwatch-agent/etc/looker-gateway.json',
    startCommands: [],
    readinessUrl: 'http://127.0.0.1:8081/',
  });
  const end = script.indexOf('\n# 2. ');
  if (end < 0) throw new Error('the user data has no step 2 marker: update this test to the script');
  return `${script.slice(0, end)}\nlog "packages done"\n`;
}

function runInRoot(script: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c) => (output += c.toString()));
    child.stderr.on('data', (c) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, output });
    });
  });
}

beforeAll(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'lg-packages-'));
  mkdirSync(path.join(workDir, 'repo'));
  const stanzas = ['lg-lock-holder', 'lg-lock-probe'].map((name) => buildDeb(workDir, name).stanza);
  writeFileSync(path.join(workDir, 'repo', 'Packages'), stanzas.join('\n'));
});

afterAll(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

test(`the package step waits for the dpkg lock (DPkg::Lock::Timeout=${DPKG_LOCK_TIMEOUT_SECONDS}) instead of failing while another apt holds it`, async () => {
  writeFileSync(path.join(workDir, 'packages.sh'), packageStep(['lg-lock-probe']), { mode: 0o755 });
  const merged = path.join(workDir, 'merged');
  const inRoot = (command: string) => `chroot ${merged} env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin ${command}`;
  const result = await runInRoot(
    [
      'set -e',
      `mkdir -p ${workDir}/upper ${workDir}/work ${merged}`,
      `mount -t overlay overlay -o lowerdir=${TRIXIE_ROOT},upperdir=${workDir}/upper,workdir=${workDir}/work ${merged}`,
      `mount -t proc proc ${merged}/proc`,
      `mount --rbind /dev ${merged}/dev`,
      `mkdir -p ${merged}/srv/lg-repo && cp ${workDir}/repo/* ${merged}/srv/lg-repo/`,
      // Only the local repository: no network.
      `: > ${merged}/etc/apt/sources.list && rm -f ${merged}/etc/apt/sources.list.d/*`,
      `echo 'deb [trusted=yes] file:/srv/lg-repo ./' > ${merged}/etc/apt/sources.list.d/lg-test.list`,
      inRoot('apt-get update -qq'),
      `cp ${workDir}/packages.sh ${merged}/var/lib/packages.sh`,
      // GIVEN another apt (as apt-daily-upgrade) holds the dpkg lock until the step has met it
      // (released when the step says it waits, or after 120 s: no race with a slow machine)
      `${inRoot(`apt-get install -y -q -o DPkg::Pre-Invoke::='touch /run/lg-lock-held; for i in $(seq 1 1200); do [ -e /run/lg-release ] && break; sleep 0.1; done' lg-lock-holder`)} > ${workDir}/holder.log 2>&1 &`,
      'holder=$!',
      `for i in $(seq 1 300); do [ -e ${merged}/run/lg-lock-held ] && break; sleep 0.1; done`,
      `[ -e ${merged}/run/lg-lock-held ] || { echo "the holder never took the lock within 30 s"; cat ${workDir}/holder.log; exit 3; }`,
      // WHEN the user data's package step runs
      'set +e',
      `${inRoot('/bin/bash /var/lib/packages.sh')} > ${workDir}/step.log 2>&1 &`,
      'step=$!',
      `for i in $(seq 1 1200); do grep -q 'Waiting for cache lock' ${workDir}/step.log && break; kill -0 $step 2>/dev/null || break; sleep 0.1; done`,
      `grep -q 'Waiting for cache lock' ${workDir}/step.log || echo "the step did not report waiting for the lock within 120 s"`,
      `touch ${merged}/run/lg-release`,
      'wait $step; code=$?',
      `cat ${workDir}/step.log`,
      'wait $holder; echo "holder=$?"',
      inRoot("dpkg-query -W -f='probe-status=${Status}\\n' lg-lock-probe"),
      'exit $code',
    ].join('\n'),
  );
  // THEN it waited for the lock, installed the package and went on
  expect({ code: result.code, output: result.code === 0 ? '' : result.output }).toEqual({ code: 0, output: '' });
  expect(result.output).toContain('[lg-bootstrap] installing lg-lock-probe');
  expect(result.output).toContain('[lg-bootstrap] packages done');
  expect(result.output).toContain('probe-status=install ok installed');
  expect(result.output).toContain('holder=0');
  expect(result.output).toContain('Waiting for cache lock');
  expect(result.output).not.toContain('E: Could not get lock');
});
