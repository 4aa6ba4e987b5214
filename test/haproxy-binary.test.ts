import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { checkConfig, haproxyCommand } from './support/haproxy';

test('the haproxy under test is 3.0 or newer and checks a config', () => {
  expect(haproxyCommand().file).toBeTruthy();
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-smoke-'));
  try {
    const cfg = path.join(dir, 'haproxy.cfg');
    writeFileSync(cfg, 'defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\nfrontend f\n  bind 127.0.0.1:18080\n  http-request return status 200\n');
    expect(() => checkConfig(cfg)).not.toThrow();
    writeFileSync(cfg, 'frontend f\n  bind 127.0.0.1:0\n  http-request nonsense\n');
    expect(() => checkConfig(cfg)).toThrow(/rejected/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
