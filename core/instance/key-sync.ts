/**
 * The key-sync unit of a gateway instance: a script, its config file and systemd units
 * that keep HAProxy's session keys and certificates in step with Secrets Manager.
 *
 *   - lg-key-sync-boot.service: runs once at boot, before haproxy.service, without reload;
 *     on a new stack it waits (bounded backoff) until the first rotations have written the
 *     keys and certificates that replace the seed values;
 *   - lg-key-sync.timer -> lg-key-sync.service: every `intervalSeconds` (plus jitter),
 *     fetches the AWSCURRENT versions that changed, writes the files atomically, checks
 *     the configuration with `haproxy -c` and reloads HAProxy seamlessly when a file
 *     changed. Any failure restores the previous files and skips the reload.
 *
 * The frontend certificate comes from a Secrets Manager secret, or from ACM (an exportable
 * public certificate, exported again whenever ACM renewed it: core/instance/acm-certificate.ts).
 * With a metric namespace, every run reports the days until the installed frontend
 * certificate expires (core/instance/certificate-expiry.ts).
 *
 * The timer's service has no ordering against haproxy.service on purpose: it calls
 * `systemctl reload` on haproxy, and a reload job ordered after a running start job
 * of the caller would wait for it forever.
 *
 * Pure: renders strings only. Values may be deploy-time placeholders or tokens.
 */
import * as path from 'node:path';
import { DEFAULT_CONFIG_DIR, GATEWAY_FILES } from '../layout';
import { ACM_CERTIFICATE_STEP } from './acm-certificate';
import { CERTIFICATE_EXPIRY_METRIC, CERTIFICATE_EXPIRY_STEP } from './certificate-expiry';
import { KEY_SYNC_SCRIPT } from './key-sync-script';
import { PROXY_NAMES } from '../haproxy/names';
import { KEY_SYNC_METRICS, LOOKER_SERVERS_PY, RUN_METRICS_STEP } from './run-metrics';

export const KEY_SYNC_DEFAULTS = {
  intervalSeconds: 300,
  randomDelaySeconds: 60,
  stateDir: '/var/lib/lg-key-sync',
  /** Under /var/log: the directory of the log file the CloudWatch agent ships. */
  logsDirectory: 'lg-key-sync',
  scriptPath: '/usr/local/sbin/lg-key-sync',
  configPath: '/etc/lg-key-sync/key-sync.conf',
  haproxyBinary: '/usr/sbin/haproxy',
  /** Reloads when haproxy runs, does nothing when it does not (first boot, stopped). */
  reloadCommand: 'systemctl try-reload-or-restart haproxy.service',
  haproxyGroup: 'haproxy',
  /**
   * How long the boot run waits for the first rotations (started on deploy, asynchronous)
   * before it gives up: well inside the group's 15-minute signal timeout.
   */
  firstRotationWaitSeconds: 480,
} as const;

/**
 * The files key-sync writes, relative to the config directory, named once here from the
 * shared layout: the script's placeholders are filled from these, and the renderer names
 * the same files in haproxy.cfg.
 */
const KEY_SYNC_FILE_NAMES = {
  SESSION_KEY_PREVIOUS: GATEWAY_FILES.sessionKey('previous'),
  SESSION_KEY_CURRENT: GATEWAY_FILES.sessionKey('current'),
  SESSION_KEY_NEXT: GATEWAY_FILES.sessionKey('next'),
  SESSION_KID_MAP: GATEWAY_FILES.sessionKidMap,
  BACKEND_CLIENT_CERTIFICATE: GATEWAY_FILES.backendClientCertificate,
  FRONTEND_CERTIFICATE: GATEWAY_FILES.frontendCertificate,
} as const;

/** The directories the script prepares (tls/ for private material, readable by the haproxy group only). */
const KEY_SYNC_DIRECTORIES = ['keys', 'maps', 'tls'];

/** The script's other placeholders: its optional steps (bash functions) and the metric name. */
const KEY_SYNC_STEPS = {
  ACM_CERTIFICATE_STEP,
  CERTIFICATE_EXPIRY_STEP,
  RUN_METRICS_STEP,
} as const;

function renderKeySyncScript(): string {
  for (const name of Object.values(KEY_SYNC_FILE_NAMES)) {
    if (!KEY_SYNC_DIRECTORIES.includes(path.posix.dirname(name)) || !SAFE_PATH.test(`/${name}`)) {
      throw new Error(
        `key-sync cannot write ${JSON.stringify(name)}: its files must be plain names in ${KEY_SYNC_DIRECTORIES.join('/, ')}/ of the config directory (core/layout.ts).`,
      );
    }
  }
  // The steps first: they name files through the same placeholders.
  const withSteps = KEY_SYNC_SCRIPT.replace(/^@([A-Z_]+_STEP)@$/gm, (placeholder, name: string) => {
    const step = (KEY_SYNC_STEPS as Record<string, string>)[name];
    if (step === undefined) throw new Error(`key-sync script placeholder ${placeholder} has no step.`);
    return step.trimEnd();
  });
  const values: Record<string, string> = {
    ...KEY_SYNC_FILE_NAMES,
    CERTIFICATE_EXPIRY_METRIC,
    SECONDS_SINCE_SUCCESS_METRIC: KEY_SYNC_METRICS.secondsSinceSuccess,
    CURRENT_KID_MATCHES_METRIC: KEY_SYNC_METRICS.currentKidMatches,
    RUN_FAILED_METRIC: KEY_SYNC_METRICS.runFailed,
    LOOKER_SERVERS_UP_METRIC: KEY_SYNC_METRICS.lookerServersUp,
    LOOKER_SERVERS_CONFIGURED_METRIC: KEY_SYNC_METRICS.lookerServersConfigured,
    LOOKER_BACKEND: PROXY_NAMES.looker,
    LOOKER_SERVERS_PY,
  };
  const script = withSteps.replace(/@([A-Z_]+)@/g, (placeholder, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`key-sync script placeholder ${placeholder} has no value.`);
    return value;
  });
  return script;
}

export const KEY_SYNC_UNITS = {
  service: 'lg-key-sync.service',
  bootService: 'lg-key-sync-boot.service',
  timer: 'lg-key-sync.timer',
} as const;

export interface KeySyncOptions {
  /** AWS region of the secrets. */
  readonly region: string;
  /** ARN of the `session-verification-keys` secret (public keys only). */
  readonly verificationKeysSecretArn: string;
  /** ARN of the `backend-client-certificate` secret. */
  readonly backendClientCertificateSecretArn: string;
  /**
   * ARN of the `frontend-certificate` secret. Give it or `frontendCertificateArn`.
   * @default - none: the frontend certificate comes from ACM
   */
  readonly frontendCertificateSecretArn?: string;
  /**
   * ARN of an exportable ACM certificate: key-sync exports it (again after each renewal).
   * Give it or `frontendCertificateSecretArn`.
   * @default - none: the frontend certificate comes from the secret
   */
  readonly frontendCertificateArn?: string;
  /**
   * CloudWatch namespace of the days-until-expiry metric of the installed frontend certificate.
   * @default - no metric
   */
  readonly metricNamespace?: string;
  /**
   * HAProxy's admin socket (\`stats socket\` of haproxy.cfg): each run reads how many servers of
   * the Looker backend are UP (metrics LookerServersUp and LookerServersConfigured, and the
   * JSON line). key-sync runs as root; the socket is root's (mode 600).
   * @default - no Looker server counts
   */
  readonly haproxyAdminSocket?: string;
  /** @default '/etc/haproxy/gateway' (DEFAULT_CONFIG_DIR) */
  readonly configDir?: string;
  /** @default '<configDir>/haproxy.cfg' */
  readonly haproxyConfigFile?: string;
  /**
   * File that gets a copy of every JSON line (the CloudWatch agent ships files, not the journal).
   * Under /var/log, systemd makes its directory (LogsDirectory=); elsewhere it must exist.
   * @default - the journal only
   */
  readonly logFile?: string;
  /** Where the last synced version of each secret is remembered. @default '/var/lib/lg-key-sync' */
  readonly stateDir?: string;
  /** Seconds between syncs. @default 300 */
  readonly intervalSeconds?: number;
  /** Up to this many seconds are added to each interval at random, so the fleet does not call at once. @default 60 */
  readonly randomDelaySeconds?: number;
  /** @default '/usr/sbin/haproxy' */
  readonly haproxyBinary?: string;
  /** Shell command that reloads HAProxy seamlessly. @default 'systemctl try-reload-or-restart haproxy.service' */
  readonly reloadCommand?: string;
  /** Group that may read the private key files. @default 'haproxy' */
  readonly haproxyGroup?: string;
  /**
   * How long the boot run waits, with a bounded backoff, for secrets whose first rotation
   * has not finished (no current session key, no certificate yet). @default 480
   */
  readonly firstRotationWaitSeconds?: number;
  /** @default '/usr/local/sbin/lg-key-sync' */
  readonly scriptPath?: string;
  /** @default '/etc/lg-key-sync/key-sync.conf' */
  readonly configPath?: string;
}

export interface KeySyncFile {
  /** Absolute path on the instance. */
  readonly path: string;
  readonly content: string;
  /** Octal mode, for example "0644". */
  readonly mode: string;
}

export interface KeySyncUnit {
  readonly files: KeySyncFile[];
  /** Units to enable (`systemctl enable --now ...`) once the files are in place. */
  readonly enableUnits: string[];
  /** One sync without systemd and without reload (containers, tests, first boot by hand). */
  readonly runOnceCommand: string;
  /** The files that key-sync writes, relative to the config directory. */
  readonly managedFiles: string[];
}

const SAFE_PATH = /^\/[A-Za-z0-9._/-]*$/;
const SAFE_VALUE = /^[^\s'"\\`$;&|<>]+$/;

/** Renders the key-sync unit. Errors name the option, the bad value and the fix. */
export function renderKeySyncUnit(options: KeySyncOptions): KeySyncUnit {
  const configDir = options.configDir ?? DEFAULT_CONFIG_DIR;
  const settings = {
    region: options.region,
    configDir,
    haproxyConfigFile: options.haproxyConfigFile ?? path.posix.join(configDir, GATEWAY_FILES.haproxyConfig),
    stateDir: options.stateDir ?? KEY_SYNC_DEFAULTS.stateDir,
    haproxyBinary: options.haproxyBinary ?? KEY_SYNC_DEFAULTS.haproxyBinary,
    scriptPath: options.scriptPath ?? KEY_SYNC_DEFAULTS.scriptPath,
    configPath: options.configPath ?? KEY_SYNC_DEFAULTS.configPath,
    reloadCommand: options.reloadCommand ?? KEY_SYNC_DEFAULTS.reloadCommand,
    haproxyGroup: options.haproxyGroup ?? KEY_SYNC_DEFAULTS.haproxyGroup,
    intervalSeconds: options.intervalSeconds ?? KEY_SYNC_DEFAULTS.intervalSeconds,
    randomDelaySeconds: options.randomDelaySeconds ?? KEY_SYNC_DEFAULTS.randomDelaySeconds,
    firstRotationWaitSeconds: options.firstRotationWaitSeconds ?? KEY_SYNC_DEFAULTS.firstRotationWaitSeconds,
  };
  for (const name of ['configDir', 'haproxyConfigFile', 'stateDir', 'haproxyBinary', 'scriptPath', 'configPath'] as const) {
    if (!SAFE_PATH.test(settings[name])) {
      throw new Error(`key-sync ${name} ${JSON.stringify(settings[name])} must be an absolute path of letters, digits and . _ - / (no spaces).`);
    }
  }
  if (options.haproxyAdminSocket !== undefined && !SAFE_PATH.test(options.haproxyAdminSocket)) {
    throw new Error(
      `key-sync haproxyAdminSocket ${JSON.stringify(options.haproxyAdminSocket)} must be an absolute path of letters, digits and . _ - / (no spaces), for example "/run/haproxy/admin.sock".`,
    );
  }
  if (options.logFile !== undefined && (!SAFE_PATH.test(options.logFile) || options.logFile.endsWith('/'))) {
    throw new Error(
      `key-sync logFile ${JSON.stringify(options.logFile)} must be an absolute file path of letters, digits and . _ - / (no spaces), for example "/var/log/lg-key-sync/key-sync.log".`,
    );
  }
  for (const name of ['region', 'haproxyGroup'] as const) {
    if (!SAFE_VALUE.test(settings[name]))
      throw new Error(`key-sync ${name} ${JSON.stringify(settings[name])} must be one word without quotes or shell characters.`);
  }
  const fromAcm = options.frontendCertificateArn !== undefined;
  if (fromAcm === (options.frontendCertificateSecretArn !== undefined)) {
    throw new Error('key-sync needs exactly one of frontendCertificateSecretArn (a secret) and frontendCertificateArn (an exportable ACM certificate).');
  }
  const secretArns = ['verificationKeysSecretArn', 'backendClientCertificateSecretArn', ...(fromAcm ? [] : ['frontendCertificateSecretArn' as const])] as const;
  for (const name of secretArns) {
    if (!SAFE_VALUE.test(options[name] ?? '')) {
      throw new Error(`key-sync ${name} ${JSON.stringify(options[name])} must be a secret ARN (arn:aws:secretsmanager:<region>:<account>:secret:<name>).`);
    }
  }
  if (fromAcm && !SAFE_VALUE.test(options.frontendCertificateArn!)) {
    throw new Error(
      `key-sync frontendCertificateArn ${JSON.stringify(options.frontendCertificateArn)} must be an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>).`,
    );
  }
  if (options.metricNamespace !== undefined && (!/^[A-Za-z0-9._/#:-]{1,255}$/.test(options.metricNamespace) || options.metricNamespace.startsWith('AWS/'))) {
    throw new Error(
      `key-sync metricNamespace ${JSON.stringify(options.metricNamespace)} must be a CloudWatch namespace of letters, digits and . _ / # : - that does not start with "AWS/", for example "LookerGateway/MyStack".`,
    );
  }
  if (settings.reloadCommand.trim() === '' || settings.reloadCommand.includes("'") || settings.reloadCommand.includes('\n')) {
    throw new Error(
      `key-sync reloadCommand ${JSON.stringify(settings.reloadCommand)} must be one line without single quotes, for example "${KEY_SYNC_DEFAULTS.reloadCommand}".`,
    );
  }
  checkSeconds('intervalSeconds', settings.intervalSeconds, 60, 86400);
  checkSeconds('randomDelaySeconds', settings.randomDelaySeconds, 0, settings.intervalSeconds);
  checkSeconds('firstRotationWaitSeconds', settings.firstRotationWaitSeconds, 0, 3600);

  const config = [
    '# lg-key-sync settings (rendered by cdk-looker-gateway; read by the lg-key-sync script).',
    `REGION='${settings.region}'`,
    `CONFIG_DIR='${settings.configDir}'`,
    `STATE_DIR='${settings.stateDir}'`,
    `VERIFICATION_KEYS_SECRET_ARN='${options.verificationKeysSecretArn}'`,
    `BACKEND_CLIENT_CERTIFICATE_SECRET_ARN='${options.backendClientCertificateSecretArn}'`,
    ...(fromAcm
      ? ["FRONTEND_CERTIFICATE_SOURCE='acm'", `FRONTEND_CERTIFICATE_ARN='${options.frontendCertificateArn}'`]
      : [`FRONTEND_CERTIFICATE_SECRET_ARN='${options.frontendCertificateSecretArn}'`]),
    `HAPROXY_BIN='${settings.haproxyBinary}'`,
    `HAPROXY_CONFIG='${settings.haproxyConfigFile}'`,
    `RELOAD_COMMAND='${settings.reloadCommand}'`,
    `HAPROXY_GROUP='${settings.haproxyGroup}'`,
    `FIRST_ROTATION_WAIT_SECONDS='${settings.firstRotationWaitSeconds}'`,
    ...(options.metricNamespace === undefined ? [] : [`METRIC_NAMESPACE='${options.metricNamespace}'`]),
    ...(options.logFile === undefined ? [] : [`LOG_FILE='${options.logFile}'`]),
    ...(options.haproxyAdminSocket === undefined ? [] : [`HAPROXY_ADMIN_SOCKET='${options.haproxyAdminSocket}'`]),
    '',
  ].join('\n');

  const hardening = [
    // The AWS CLI looks for ~/.aws; give it a home it may read while /root stays hidden.
    `Environment=HOME=${settings.stateDir}`,
    'NoNewPrivileges=yes',
    'PrivateTmp=yes',
    'ProtectHome=yes',
    'ProtectSystem=full',
    ...writablePaths(settings.configDir, settings.stateDir),
    ...logsDirectory(options.logFile),
  ];
  const service = unit([
    '[Unit]',
    `Description=Looker gateway key sync: rotated session keys and certificates from Secrets Manager${fromAcm ? ' and ACM' : ''} into HAProxy`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${settings.scriptPath} ${settings.configPath}`,
    'TimeoutStartSec=10min',
    'SyslogIdentifier=lg-key-sync',
    ...hardening,
  ]);
  const bootService = unit([
    '[Unit]',
    'Description=Looker gateway key sync at boot, before HAProxy starts',
    'Wants=network-online.target',
    'After=network-online.target',
    'Before=haproxy.service',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=${settings.scriptPath} ${settings.configPath} --no-reload --wait-for-first-rotation`,
    // Longer than the wait for the first rotations, shorter than the group's signal timeout.
    `TimeoutStartSec=${Math.ceil(settings.firstRotationWaitSeconds / 60) + 5}min`,
    'SyslogIdentifier=lg-key-sync',
    ...hardening,
    '',
    '[Install]',
    'WantedBy=multi-user.target haproxy.service',
  ]);
  const timer = unit([
    '[Unit]',
    'Description=Looker gateway key sync, every few minutes',
    '',
    '[Timer]',
    `OnBootSec=${settings.intervalSeconds}s`,
    `OnUnitActiveSec=${settings.intervalSeconds}s`,
    `RandomizedDelaySec=${settings.randomDelaySeconds}s`,
    'AccuracySec=1s',
    `Unit=${KEY_SYNC_UNITS.service}`,
    '',
    '[Install]',
    'WantedBy=timers.target',
  ]);

  return {
    files: [
      { path: settings.scriptPath, content: renderKeySyncScript(), mode: '0755' },
      { path: settings.configPath, content: config, mode: '0640' },
      { path: `/etc/systemd/system/${KEY_SYNC_UNITS.service}`, content: service, mode: '0644' },
      { path: `/etc/systemd/system/${KEY_SYNC_UNITS.bootService}`, content: bootService, mode: '0644' },
      { path: `/etc/systemd/system/${KEY_SYNC_UNITS.timer}`, content: timer, mode: '0644' },
    ],
    enableUnits: [KEY_SYNC_UNITS.bootService, KEY_SYNC_UNITS.timer],
    runOnceCommand: `${settings.scriptPath} ${settings.configPath} --no-reload`,
    managedFiles: Object.values(KEY_SYNC_FILE_NAMES),
  };
}

/**
 * systemd refuses to start a unit (226/NAMESPACE) when a ReadWritePaths= entry does not
 * exist. A state directory under /var/lib is made by systemd itself (StateDirectory=); the
 * config directory (written by the user data before the units start) is optional ("-"), so
 * a missing one shows up as key-sync's own error, not as a namespace failure.
 */
function writablePaths(configDir: string, stateDir: string): string[] {
  const stateUnderVarLib = /^\/var\/lib\/([A-Za-z0-9._-][A-Za-z0-9._/-]*)$/.exec(stateDir);
  return stateUnderVarLib
    ? [`StateDirectory=${stateUnderVarLib[1]}`, 'StateDirectoryMode=0750', `ReadWritePaths=-${configDir}`]
    : [`ReadWritePaths=-${configDir} -${stateDir}`];
}

/** A log file under /var/log gets its directory from systemd (LogsDirectory=), at every start, so a run never fails for want of it. */
function logsDirectory(logFile: string | undefined): string[] {
  const underVarLog = logFile === undefined ? null : /^\/var\/log\/([A-Za-z0-9._-][A-Za-z0-9._/-]*)\/[^/]+$/.exec(logFile);
  return underVarLog ? [`LogsDirectory=${underVarLog[1]}`, 'LogsDirectoryMode=0750'] : [];
}

function unit(lines: string[]): string {
  return `# Rendered by cdk-looker-gateway (core/instance/key-sync.ts).\n${lines.join('\n')}\n`;
}

function checkSeconds(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`key-sync ${name} is ${value}: use a whole number of seconds from ${min} to ${max}.`);
  }
}
