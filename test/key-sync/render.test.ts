import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KEY_SYNC_DEFAULTS, KeySyncOptions, renderKeySyncUnit } from '../../core/instance/key-sync';
import { renderGatewayConfig } from '../../core/haproxy';
import { DEFAULT_CONFIG_DIR } from '../../core/layout';

const OPTIONS: KeySyncOptions = {
  region: 'eu-west-1',
  verificationKeysSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lg/session-verification-keys-AbCdEf',
  backendClientCertificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lg/backend-client-certificate-AbCdEf',
  frontendCertificateSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:lg/frontend-certificate-AbCdEf',
};

function file(unit: ReturnType<typeof renderKeySyncUnit>, name: string): string {
  const found = unit.files.find((f) => f.path === name);
  if (!found) throw new Error(`no ${name} among ${unit.files.map((f) => f.path).join(', ')}`);
  return found.content;
}

describe('renderKeySyncUnit', () => {
  test('renders the script, its config and the systemd units with the documented defaults', () => {
    const unit = renderKeySyncUnit(OPTIONS);
    expect(unit.files.map((f) => [f.path, f.mode])).toEqual([
      ['/usr/local/sbin/lg-key-sync', '0755'],
      ['/etc/lg-key-sync/key-sync.conf', '0640'],
      ['/etc/systemd/system/lg-key-sync.service', '0644'],
      ['/etc/systemd/system/lg-key-sync-boot.service', '0644'],
      ['/etc/systemd/system/lg-key-sync.timer', '0644'],
    ]);
    expect(file(unit, '/etc/lg-key-sync/key-sync.conf')).toBe(
      [
        '# lg-key-sync settings (rendered by cdk-looker-gateway; read by the lg-key-sync script).',
        "REGION='eu-west-1'",
        "CONFIG_DIR='/etc/haproxy/gateway'",
        "STATE_DIR='/var/lib/lg-key-sync'",
        `VERIFICATION_KEYS_SECRET_ARN='${OPTIONS.verificationKeysSecretArn}'`,
        `BACKEND_CLIENT_CERTIFICATE_SECRET_ARN='${OPTIONS.backendClientCertificateSecretArn}'`,
        `FRONTEND_CERTIFICATE_SECRET_ARN='${OPTIONS.frontendCertificateSecretArn}'`,
        "HAPROXY_BIN='/usr/sbin/haproxy'",
        "HAPROXY_CONFIG='/etc/haproxy/gateway/haproxy.cfg'",
        "RELOAD_COMMAND='systemctl try-reload-or-restart haproxy.service'",
        "HAPROXY_GROUP='haproxy'",
        "FIRST_ROTATION_WAIT_SECONDS='480'",
        '',
      ].join('\n'),
    );
    const timer = file(unit, '/etc/systemd/system/lg-key-sync.timer');
    expect(timer).toContain('OnUnitActiveSec=300s\n');
    expect(timer).toContain('RandomizedDelaySec=60s\n');
    const boot = file(unit, '/etc/systemd/system/lg-key-sync-boot.service');
    expect(boot).toContain('Before=haproxy.service\n');
    expect(boot).toContain('ExecStart=/usr/local/sbin/lg-key-sync /etc/lg-key-sync/key-sync.conf --no-reload --wait-for-first-rotation\n');
    // Longer than the wait for the first rotations (480 s), shorter than the group's 15-minute signal timeout.
    expect(boot).toContain('TimeoutStartSec=13min\n');
    // systemd refuses a unit whose ReadWritePaths= entry is missing (226/NAMESPACE): the state
    // directory is systemd's own, the config directory optional. test/constructs/user-data.test.ts
    // starts these units under systemd 257.
    for (const name of ['lg-key-sync.service', 'lg-key-sync-boot.service']) {
      const service = file(unit, `/etc/systemd/system/${name}`);
      expect(service).toContain('StateDirectory=lg-key-sync\n');
      expect(service).toContain('ReadWritePaths=-/etc/haproxy/gateway\n');
      expect(service).not.toMatch(/ReadWritePaths=[^\n]*\/var\/lib/);
    }
    // The periodic service reloads haproxy, so it must not be ordered against it (the reload job would wait for it).
    expect(file(unit, '/etc/systemd/system/lg-key-sync.service')).not.toMatch(/haproxy\.service/);
    expect(unit.enableUnits).toEqual(['lg-key-sync-boot.service', 'lg-key-sync.timer']);
    // key-sync writes exactly the secret-backed files that haproxy.cfg names (the renderer
    // lists every file the config needs); the script carries their names, no placeholder left.
    const rendered = renderGatewayConfig({
      session: { issuer: 'https://gateway.example.com/oauth2', audience: 'looker-gateway' },
      authService: { host: 'api.example.com' },
      looker: { servers: [{ address: '10.0.0.10' }], tlsServerName: 'looker.internal' },
    });
    const requiredRelative = rendered.requiredFiles.map((f) => path.posix.relative(DEFAULT_CONFIG_DIR, f));
    expect(requiredRelative).toEqual(expect.arrayContaining(unit.managedFiles));
    const script = file(unit, '/usr/local/sbin/lg-key-sync');
    for (const name of unit.managedFiles) expect(script).toContain(name);
    expect(script).not.toMatch(/@[A-Z_]+@/);
    expect(unit.managedFiles).toHaveLength(6);
    expect(KEY_SYNC_DEFAULTS.intervalSeconds).toBe(300);
  });

  test('the script is valid bash and the config file is valid shell that sets every variable the script reads', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'lg-key-sync-'));
    try {
      const unit = renderKeySyncUnit({ ...OPTIONS, reloadCommand: 'kill -USR2 $(cat /run/haproxy.pid)' });
      writeFileSync(path.join(dir, 'script'), file(unit, '/usr/local/sbin/lg-key-sync'));
      writeFileSync(path.join(dir, 'conf'), file(unit, '/etc/lg-key-sync/key-sync.conf'));
      execFileSync('bash', ['-n', path.join(dir, 'script')]);
      const out = execFileSync(
        'bash',
        ['-c', `set -u; . ${path.join(dir, 'conf')}; printf '%s|' "$RELOAD_COMMAND" "$HAPROXY_CONFIG" "$FRONTEND_CERTIFICATE_SECRET_ARN"`],
        { encoding: 'utf8' },
      );
      expect(out).toBe(`kill -USR2 $(cat /run/haproxy.pid)|/etc/haproxy/gateway/haproxy.cfg|${OPTIONS.frontendCertificateSecretArn}|`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a log file under /var/log: systemd makes its directory for both services (LogsDirectory=), the script appends to it', () => {
    const unit = renderKeySyncUnit({ ...OPTIONS, logFile: '/var/log/lg-key-sync/key-sync.log' });
    for (const name of ['lg-key-sync.service', 'lg-key-sync-boot.service'])
      expect(file(unit, `/etc/systemd/system/${name}`)).toContain('LogsDirectory=lg-key-sync\nLogsDirectoryMode=0750\n');
    expect(file(unit, '/etc/lg-key-sync/key-sync.conf')).toContain("LOG_FILE='/var/log/lg-key-sync/key-sync.log'\n");
    // Elsewhere the directory is the caller's: no LogsDirectory, and by default no file at all.
    expect(file(renderKeySyncUnit({ ...OPTIONS, logFile: '/srv/logs/key-sync.log' }), '/etc/systemd/system/lg-key-sync.service')).not.toContain(
      'LogsDirectory',
    );
    expect(file(renderKeySyncUnit(OPTIONS), '/etc/lg-key-sync/key-sync.conf')).not.toContain('LOG_FILE');
  });

  test("with HAProxy's admin socket, each run reads the Looker servers from it; without, no HAProxy setting at all", () => {
    expect(file(renderKeySyncUnit({ ...OPTIONS, haproxyAdminSocket: '/run/haproxy/admin.sock' }), '/etc/lg-key-sync/key-sync.conf')).toContain(
      "HAPROXY_ADMIN_SOCKET='/run/haproxy/admin.sock'\n",
    );
    expect(file(renderKeySyncUnit(OPTIONS), '/etc/lg-key-sync/key-sync.conf')).not.toContain('HAPROXY_ADMIN_SOCKET');
  });

  test('deploy-time placeholders pass (they look like host names)', () => {
    expect(() =>
      renderKeySyncUnit({ ...OPTIONS, region: 'lg-value-1.placeholder.invalid', verificationKeysSecretArn: 'lg-value-2.placeholder.invalid' }),
    ).not.toThrow();
  });

  test.each([
    [{ configDir: 'etc/haproxy' }, 'key-sync configDir "etc/haproxy" must be an absolute path of letters, digits and . _ - / (no spaces).'],
    [{ stateDir: '/var/lib/my state' }, 'key-sync stateDir "/var/lib/my state" must be an absolute path of letters, digits and . _ - / (no spaces).'],
    [{ region: "eu-west-1'; rm -rf /" }, `key-sync region "eu-west-1'; rm -rf /" must be one word without quotes or shell characters.`],
    [
      { frontendCertificateSecretArn: '' },
      'key-sync frontendCertificateSecretArn "" must be a secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>).',
    ],
    [
      { reloadCommand: "systemctl reload 'haproxy'" },
      `key-sync reloadCommand "systemctl reload 'haproxy'" must be one line without single quotes, for example "systemctl try-reload-or-restart haproxy.service".`,
    ],
    [{ intervalSeconds: 10 }, 'key-sync intervalSeconds is 10: use a whole number of seconds from 60 to 86400.'],
    [{ intervalSeconds: 120, randomDelaySeconds: 600 }, 'key-sync randomDelaySeconds is 600: use a whole number of seconds from 0 to 120.'],
    [
      { logFile: '/var/log/lg key-sync.log' },
      'key-sync logFile "/var/log/lg key-sync.log" must be an absolute file path of letters, digits and . _ - / (no spaces), for example "/var/log/lg-key-sync/key-sync.log".',
    ],
    [
      { haproxyAdminSocket: 'admin.sock' },
      'key-sync haproxyAdminSocket "admin.sock" must be an absolute path of letters, digits and . _ - / (no spaces), for example "/run/haproxy/admin.sock".',
    ],
  ] as const)('rejects %j with the bad value and the fix', (bad, message) => {
    expect(() => renderKeySyncUnit({ ...OPTIONS, ...bad })).toThrow(message);
  });
});
