import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { checkConfig, haproxyCommand, startHaproxy } from '../dev/haproxy';
import { freePort } from '../dev/ports';

test('the haproxy under test is 3.0 or newer and checks a config', () => {
  expect(haproxyCommand().file).toBeTruthy();
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-smoke-'));
  try {
    const cfg = path.join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      'defaults\n  mode http\n  timeout client 1s\n  timeout server 1s\n  timeout connect 1s\nfrontend f\n  bind 127.0.0.1:18080\n  http-request return status 200\n',
    );
    expect(() => checkConfig(cfg)).not.toThrow();
    writeFileSync(cfg, 'frontend f\n  bind 127.0.0.1:0\n  http-request nonsense\n');
    expect(() => checkConfig(cfg)).toThrow(/rejected/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('startHaproxy runs master-worker with Lua through the re-exec wrapper and stops cleanly', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'lg-smoke-'));
  const port = await freePort();
  try {
    writeFileSync(
      path.join(dir, 'hello.lua'),
      "core.register_service('hello', 'http', function(applet) local body = 'hello from lua' applet:set_status(200) applet:add_header('content-length', #body) applet:start_response() applet:send(body) end)\n",
    );
    const cfg = path.join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      `global\n  lua-load ${dir}/hello.lua\ndefaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\nfrontend f\n  bind 127.0.0.1:${port}\n  http-request use-service lua.hello\n`,
    );
    const running = await startHaproxy(cfg, [port]);
    try {
      const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      expect(body).toBe('hello from lua');
    } finally {
      await running.stop();
    }
    expect(running.process.exitCode !== null || running.process.signalCode !== null).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
