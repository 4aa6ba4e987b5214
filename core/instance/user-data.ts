/**
 * The instance bootstrap (EC2 user data) and the files it installs, rendered at synth.
 * Pure: no CDK constructs, only strings, so the tests render the same script the template
 * carries.
 *
 * EC2 user data is limited to 16 KB, and haproxy.cfg, the Lua action and the key-sync unit
 * are larger than that. So the files travel as Metadata of the launch template resource
 * (where CloudFormation also puts the deploy-time values such as the auth service host
 * and the secret ARNs), and the small user data fetches them with
 * `aws cloudformation describe-stack-resource`, as cfn-init does (cfn-init itself is not
 * packaged for Debian). The user data carries a digest of the files, so a change of any
 * file makes a new launch template version and a rolling update.
 *
 * It runs under systemd, as cloud-init runs user data on the Debian 13 AMI; the tests boot
 * a Debian 13 root with systemd as PID 1 and run it there. Switches for that harness:
 *   LG_SKIP_CLOUDWATCH_AGENT=1   do not download/install the CloudWatch agent
 *   LG_SKIP_SSM_AGENT=1          do not download/install the SSM agent (Session Manager)
 *   LG_IMDS_ENDPOINT=http://...  instance metadata endpoint (default http://169.254.169.254)
 * AWS endpoints are the CLI's own: AWS_ENDPOINT_URL_CLOUDFORMATION, AWS_ENDPOINT_URL_SECRETS_MANAGER.
 *
 * Size: the bootstrap script and the list of files it installs, which must agree line for
 * line; the key-sync unit and the certificate scripts already live in files of their own.
 */
import * as path from 'node:path';
import { isIpv4Address } from '../net';
import { GatewayConfigOptions, LogDestination, MachineClient, MachineRoutes, UserClaim } from '../haproxy/options';
import { DEFAULT_CONFIG_DIR, GATEWAY_FILES } from '../layout';
import { renderGatewayConfig, RenderedGatewayConfig } from '../haproxy/render';
import { KeySyncUnit, renderKeySyncUnit } from './key-sync';
import {
  ACCESS_LOG_PATH,
  BOOTSTRAP_LOG_PATH,
  HAPROXY_MESSAGES_LOG_PATH,
  InstanceLogGroupNames,
  KEY_SYNC_LOG_PATH,
  logCollectList,
  logrotateConfig,
} from './instance-logs';

export { ACCESS_LOG_PATH };

export interface BootstrapFile {
  /** Absolute path on the instance. */
  readonly path: string;
  /** Octal mode, for example "0644". */
  readonly mode: string;
  readonly content: string;
}

/** Metadata key of the launch template that holds the files. */
export const FILES_METADATA_KEY = 'cdk-looker-gateway:files';

export interface BootstrapScriptOptions {
  /** AWS region (for the CLI and the CloudWatch agent download). */
  readonly region: string;
  readonly stackName: string;
  /** Logical id of the resource whose Metadata holds the files (the launch template). */
  readonly filesResourceId: string;
  /** Logical id of the Auto Scaling group, signalled when the instance is ready. */
  readonly signalResourceId: string;
  /** SHA-256 of the files, so any change makes a new launch template version. */
  readonly filesDigest: string;
  /** Debian packages the instance needs; only missing ones are installed. */
  readonly packages: readonly string[];
  /** Path of the CloudWatch agent configuration among the files. */
  readonly cloudWatchAgentConfigPath: string;
  /** Commands run once the files are in place: keys, then HAProxy, under systemd. */
  readonly startCommands: readonly string[];
  /** URL HAProxy answers once it runs: the loopback readiness bind (no PROXY header). */
  readonly readinessUrl: string;
}

/** Validates the files (paths, modes) and returns the Metadata value. */
export function filesMetadata(files: readonly BootstrapFile[]): { files: BootstrapFile[] } {
  for (const file of files) {
    if (!file.path.startsWith('/') || /["'$`\\\s]/.test(file.path))
      throw new Error(`Bootstrap file path ${JSON.stringify(file.path)} must be absolute with no quotes, spaces or shell characters.`);
    if (!/^0[0-7]{3}$/.test(file.mode)) throw new Error(`Bootstrap file mode ${JSON.stringify(file.mode)} for ${file.path} must be octal like "0644".`);
  }
  return { files: files.map((file) => ({ path: file.path, mode: file.mode, content: file.content })) };
}

/** Placeholders that stand for deploy-time values while core/haproxy renders (they are valid host names, so they pass its checks). */
export class DeployTimeValues {
  private readonly values = new Map<string, string>();

  /** `value` itself when `isToken(value)` is false, otherwise a placeholder that stands for it. */
  public placeholderFor(value: string, isToken: (value: string) => boolean): string {
    if (!isToken(value)) return value;
    for (const [placeholder, known] of this.values) if (known === value) return placeholder;
    const placeholder = `lg-value-${this.values.size + 1}.placeholder.invalid`;
    this.values.set(placeholder, value);
    return placeholder;
  }

  /** Puts the deploy-time values (tokens) back where the placeholders ended up. */
  public restore(text: string): string {
    let result = text;
    for (const [placeholder, value] of this.values) result = result.split(placeholder).join(value);
    return result;
  }
}

/**
 * apt and dpkg wait this long for the package lock: on first boot Debian's apt-daily and
 * apt-daily-upgrade units (unattended-upgrades) may hold it.
 */
export const DPKG_LOCK_TIMEOUT_SECONDS = 600;

export function renderBootstrapScript(o: BootstrapScriptOptions): string {
  const packages = o.packages.join(' ');
  return [
    '#!/bin/bash',
    '# cdk-looker-gateway instance bootstrap. Rendered at synth by core/instance/user-data.ts;',
    '# the tests run this very script in a Debian 13 root.',
    `# files digest: ${o.filesDigest}`,
    'set -euo pipefail',
    `exec > >(tee -a ${BOOTSTRAP_LOG_PATH}) 2>&1`,
    `export AWS_REGION='${o.region}' AWS_DEFAULT_REGION='${o.region}'`,
    `LG_STACK_NAME='${o.stackName}'`,
    `LG_FILES_RESOURCE='${o.filesResourceId}'`,
    `LG_SIGNAL_RESOURCE='${o.signalResourceId}'`,
    'IMDS="${LG_IMDS_ENDPOINT:-http://169.254.169.254}"',
    'log() { printf "[lg-bootstrap] %s\\n" "$*"; }',
    '',
    'instance_id() {',
    '  local token',
    '  token=$(curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" "$IMDS/latest/api/token")',
    '  curl -fsS -H "X-aws-ec2-metadata-token: $token" "$IMDS/latest/meta-data/instance-id"',
    '}',
    'signal() {',
    '  aws cloudformation signal-resource --stack-name "$LG_STACK_NAME" --logical-resource-id "$LG_SIGNAL_RESOURCE" \\',
    '    --unique-id "$(instance_id)" --status "$1" >/dev/null || log "could not signal $1 to CloudFormation"',
    '}',
    'trap \'log "bootstrap failed at line $LINENO"; signal FAILURE\' ERR',
    '',
    '# 1. Packages: only the missing ones (an AMI that has them needs no network). apt-daily and',
    '#    unattended-upgrades may hold the dpkg lock on first boot: wait for it rather than fail.',
    `APT=(apt-get -q -o DPkg::Lock::Timeout=${DPKG_LOCK_TIMEOUT_SECONDS})`,
    'export DEBIAN_FRONTEND=noninteractive',
    'missing=()',
    `for p in ${packages}; do dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done`,
    'if ((${#missing[@]})); then',
    '  log "installing ${missing[*]}"',
    '  "${APT[@]}" update',
    '  "${APT[@]}" install -y --no-install-recommends "${missing[@]}"',
    'fi',
    '',
    '# 2. The CloudWatch agent and the SSM agent are not packaged by Debian: AWS publishes them per region.',
    'if [[ ${LG_SKIP_CLOUDWATCH_AGENT:-0} != 1 ]] && ! dpkg-query -W amazon-cloudwatch-agent >/dev/null 2>&1; then',
    '  arch=$(dpkg --print-architecture)',
    '  curl -fsSL --retry 5 -o /tmp/amazon-cloudwatch-agent.deb \\',
    '    "https://amazoncloudwatch-agent-${AWS_REGION}.s3.${AWS_REGION}.amazonaws.com/debian/${arch}/latest/amazon-cloudwatch-agent.deb"',
    '  "${APT[@]}" install -y /tmp/amazon-cloudwatch-agent.deb',
    '  rm -f /tmp/amazon-cloudwatch-agent.deb',
    'fi',
    '# Session Manager (no SSH): the SSM agent, also published per region, when the AMI lacks it.',
    'if [[ ${LG_SKIP_SSM_AGENT:-0} != 1 ]] && ! dpkg-query -W amazon-ssm-agent >/dev/null 2>&1; then',
    '  arch=$(dpkg --print-architecture)',
    '  curl -fsSL --retry 5 -o /tmp/amazon-ssm-agent.deb \\',
    '    "https://s3.${AWS_REGION}.amazonaws.com/amazon-ssm-${AWS_REGION}/latest/debian_${arch}/amazon-ssm-agent.deb"',
    '  "${APT[@]}" install -y /tmp/amazon-ssm-agent.deb',
    '  rm -f /tmp/amazon-ssm-agent.deb',
    '  systemctl enable --now amazon-ssm-agent',
    'fi',
    '',
    '# 3. Files (haproxy.cfg, the Lua action, key-sync, agent and service settings) from the',
    '#    launch template Metadata, each written atomically.',
    'metadata=$(mktemp)',
    'aws cloudformation describe-stack-resource --stack-name "$LG_STACK_NAME" --logical-resource-id "$LG_FILES_RESOURCE" \\',
    `  --query 'StackResourceDetail.Metadata' --output text | jq '.["${FILES_METADATA_KEY}"]' > "$metadata"`,
    'count=$(jq \'.files | length\' "$metadata")',
    '((count > 0))',
    'for ((i = 0; i < count; i++)); do',
    '  path=$(jq -r ".files[$i].path" "$metadata")',
    '  mode=$(jq -r ".files[$i].mode" "$metadata")',
    '  install -d -m 0755 "$(dirname "$path")"',
    '  tmp=$(mktemp "$path.XXXXXX")',
    '  jq -j ".files[$i].content" "$metadata" > "$tmp"',
    '  chmod "$mode" "$tmp"',
    '  mv -f "$tmp" "$path"',
    'done',
    'rm -f "$metadata"',
    'log "wrote $count files"',
    '',
    '# 4. Keys and certificates (the boot unit waits for the first rotation), then HAProxy.',
    ...o.startCommands,
    'if dpkg-query -W amazon-cloudwatch-agent >/dev/null 2>&1; then',
    `  /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c file:${o.cloudWatchAgentConfigPath}`,
    'fi',
    '',
    '# 5. Ready when HAProxy answers the readiness probe (200 whenever the gateway works, Looker',
    "#    or not: Looker's state is a metric); then tell CloudFormation.",
    'for _ in $(seq 1 120); do',
    `  code=$(curl -s -o /dev/null -w '%{http_code}' '${o.readinessUrl}' || true)`,
    '  if [[ $code == 200 ]]; then',
    '    log "ready"',
    '    signal SUCCESS',
    '    exit 0',
    '  fi',
    '  sleep 1',
    'done',
    'log "haproxy did not become ready"',
    'false',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------
// What goes on an instance: the files rendered by core/haproxy (haproxy.cfg, the Lua action,
// error pages), the key-sync unit, the CloudWatch agent config and the haproxy service
// settings.

/** Debian packages an instance needs (only missing ones are installed). */
// python3: key-sync reads HAProxy's admin socket with it (Debian's awscli depends on it anyway).
export const INSTANCE_PACKAGES: readonly string[] = ['haproxy', 'awscli', 'jq', 'curl', 'ca-certificates', 'openssl', 'python3'];
export const CLOUDWATCH_AGENT_CONFIG_PATH = '/opt/aws/amazon-cloudwatch-agent/etc/looker-gateway.json';
/** The namespace of the agent's metrics (memory, disk, connections); the instance role may write only there. */
export const CLOUDWATCH_AGENT_METRIC_NAMESPACE = 'CWAgent';
const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
/** The unprivileged user (and group) of Debian's haproxy package that the workers run as. */
export const HAPROXY_USER = 'haproxy';

export interface InstanceFilesInput {
  readonly region: string;
  readonly domainName: string;
  readonly session: {
    readonly issuer: string;
    readonly audience: string;
    readonly algorithm: string;
    readonly attributeNames: readonly string[];
    readonly userClaim?: UserClaim;
  };
  readonly authService: { readonly hostName: string; readonly pathPrefix: string };
  readonly looker: InstanceLookerInput;
  readonly instancePort: number;
  readonly healthCheckPort: number;
  /** Loopback port of the readiness probe (the boot check). */
  readonly readinessPort: number;
  readonly metricsPort: number;
  readonly accessLogGroupName: string;
  /** Log groups of the other files the agent ships (core/instance/instance-logs.ts). @default - the access log group, a stream per file */
  readonly logGroupNames?: Omit<InstanceLogGroupNames, 'access'>;
  /** Secret ARNs; `frontendCertificate` when the frontend certificate is in a secret. */
  readonly secrets: { readonly verificationKeys: string; readonly backendClientCertificate: string; readonly frontendCertificate?: string };
  /** ARN of the exportable ACM certificate, when the frontend certificate comes from ACM. */
  readonly frontendAcmCertificateArn?: string;
  /** Namespace of key-sync's days-until-expiry metric. @default - no metric */
  readonly metricNamespace?: string;
  /** Port of HAProxy's plain HTTP listener that redirects to HTTPS. @default - none */
  readonly httpRedirectPort?: number;
  /** Client-certificate routes for scripts and agents, with the CA (and CRL) their certificates are checked against. */
  readonly machineClients?: InstanceMachineClients;
  /** HAProxy settings the construct's props choose. @default - the renderer's defaults */
  readonly haproxy?: InstanceHaproxySettings;
}

/** The construct props that tune HAProxy (each `undefined` keeps the renderer's default). */
export interface InstanceHaproxySettings {
  /** Origins that may frame Looker (embedding). */
  readonly frameAncestors?: readonly string[];
  /** Requests per client address and period on /oauth2/*. */
  readonly authRequestsPerPeriod?: number;
  readonly authRatePeriodSeconds?: number;
  readonly verificationCacheSize?: number;
  /** Connections of the whole process (global maxconn). */
  readonly maxConnections?: number;
  /** Connections of the public listener (its maxconn). */
  readonly listenerMaxConnections?: number;
}

/** How the instances reach Looker (the constructs' LookerBackend config). */
export interface InstanceLookerInput {
  /** Host names or IPv4 addresses of the Looker nodes, or one DNS name that resolves to all of them. */
  readonly hosts: readonly string[];
  /** True when `hosts` is one DNS name HAProxy resolves at run time. */
  readonly resolvesByDns: boolean;
  readonly webPort: number;
  readonly healthPath: string;
  /** CA of Looker's certificates, PEM, when known at synth (else the system store). */
  readonly caCertificatePem?: string;
  /** Name in Looker's certificate (SNI and verification). */
  readonly serverName?: string;
}

export interface InstanceMachineClients {
  readonly clients: readonly MachineClient[];
  readonly routes: MachineRoutes;
  /** CAs that client certificates must chain to, PEM: rendered as tls/client-ca.pem. Absent only in options the renderer rejects (clients without routes). */
  readonly caPem?: string;
  /** CRL, PEM: rendered as tls/client-crl.pem and checked by HAProxy. */
  readonly crlPem?: string;
}

/** The gateway options handed to the core/haproxy renderer, from the fleet's settings. */
export function gatewayConfigOptions(input: InstanceFilesInput): GatewayConfigOptions {
  const looker = input.looker;
  const serverName = looker.serverName ?? (isIpv4Address(looker.hosts[0]) ? undefined : looker.hosts[0]);
  if (!serverName) {
    throw new Error(
      `The Looker hosts are IP addresses (${looker.hosts.join(', ')}) and no serverName is set: HAProxy must check the name in Looker's certificate. Give LookerBackend.fromHosts(..., { serverName: "looker.internal.example.com" }).`,
    );
  }
  const h = input.haproxy ?? {};
  return {
    configDir: DEFAULT_CONFIG_DIR,
    listener: { port: input.instancePort, acceptProxyProtocol: true, maxconn: h.listenerMaxConnections },
    ...(input.httpRedirectPort === undefined ? {} : { httpRedirect: { port: input.httpRedirectPort } }),
    healthCheck: { port: input.healthCheckPort },
    readiness: { port: input.readinessPort },
    metrics: { port: input.metricsPort },
    // Debian's haproxy package makes this user; the master stays root for binds and reloads.
    process: { user: HAPROXY_USER, group: HAPROXY_USER, maxconn: h.maxConnections },
    securityHeaders: { frameAncestors: h.frameAncestors ? [...h.frameAncestors] : undefined },
    authRateLimit: { requestsPerPeriod: h.authRequestsPerPeriod, periodSeconds: h.authRatePeriodSeconds },
    session: {
      issuer: input.session.issuer,
      audience: input.session.audience,
      algorithm: input.session.algorithm,
      attributeNames: [...input.session.attributeNames],
      userClaim: input.session.userClaim,
      verificationCacheSize: h.verificationCacheSize,
    },
    authService: { host: input.authService.hostName, pathPrefix: input.authService.pathPrefix },
    looker: looker.resolvesByDns
      ? { dnsName: looker.hosts[0], dnsPort: looker.webPort, tlsServerName: serverName, healthCheckPath: looker.healthPath }
      : { servers: looker.hosts.map((address) => ({ address, port: looker.webPort })), tlsServerName: serverName, healthCheckPath: looker.healthPath },
    logging: { destination: LogDestination.STDOUT },
    ...(input.machineClients
      ? {
          machineClients: input.machineClients.clients.map((client) => ({ ...client })),
          machineRoutes: input.machineClients.routes,
          clientCrl: input.machineClients.crlPem !== undefined,
        }
      : {}),
  };
}

/** Every file an instance needs: core/haproxy's rendered gateway files, the key-sync unit, agent and service settings. */
export function renderInstanceFiles(input: InstanceFilesInput): BootstrapFile[] {
  const rendered = renderGateway(input);
  const inConfigDir = (relative: string) => path.posix.join(DEFAULT_CONFIG_DIR, relative);
  return [
    ...rendered.files.map((file) => ({ path: inConfigDir(file.path), mode: `0${file.mode.toString(8)}`, content: file.content })),
    { path: CLOUDWATCH_AGENT_CONFIG_PATH, mode: '0644', content: cloudWatchAgentConfig({ ...input.logGroupNames, access: input.accessLogGroupName }) },
    { path: '/etc/systemd/system/haproxy.service.d/looker-gateway.conf', mode: '0644', content: haproxyServiceDropIn(rendered.configFile) },
    { path: '/etc/logrotate.d/looker-gateway', mode: '0644', content: logrotateConfig() },
    ...keySyncUnit(input, rendered.adminSocket).files,
  ];
}

/**
 * core/haproxy's renderer, with the material known at synth: Looker's CA when it was given and
 * the machine clients' CA and CRL (key-sync writes the rest).
 */
function renderGateway(input: InstanceFilesInput): RenderedGatewayConfig {
  const options = gatewayConfigOptions(input);
  const material = {
    ...(input.looker.caCertificatePem ? { backendCaPem: input.looker.caCertificatePem } : {}),
    ...(input.machineClients ? { clientCaPem: input.machineClients.caPem, clientCrlPem: input.machineClients.crlPem } : {}),
  };
  return renderGatewayConfig({ ...options, material: Object.keys(material).length > 0 ? material : undefined });
}

/** Commands that bring the instance up under systemd, once the files are in place. */
export function startCommands(input: InstanceFilesInput): string[] {
  const rendered = renderGateway(input);
  const keySync = keySyncUnit(input, rendered.adminSocket);
  const config = rendered.configFile;
  const checkRequiredFiles = `for f in ${rendered.requiredFiles.join(' ')}; do [[ -s $f ]] || { log "missing $f"; false; }; done`;
  const defaultCas = [
    `install -d -m 0755 ${rendered.directories.join(' ')} $(dirname ${ACCESS_LOG_PATH})`,
    // Looker's CA when none was given, and the auth service's (a public Amazon certificate): the system store.
    `[[ -s ${path.posix.join(DEFAULT_CONFIG_DIR, GATEWAY_FILES.backendCa)} ]] || cp ${SYSTEM_CA_BUNDLE} ${path.posix.join(DEFAULT_CONFIG_DIR, GATEWAY_FILES.backendCa)}`,
    `cp ${SYSTEM_CA_BUNDLE} ${path.posix.join(DEFAULT_CONFIG_DIR, GATEWAY_FILES.authServiceCa)}`,
  ];
  return [
    ...defaultCas,
    'systemctl daemon-reload',
    // The boot unit fetches the keys and certificates before haproxy starts (waiting for the
    // first rotation if it has not finished); the timer keeps them current.
    `systemctl enable --now ${keySync.enableUnits.join(' ')}`,
    checkRequiredFiles,
    `haproxy -c -q -f ${config}`,
    'systemctl enable haproxy',
    'systemctl restart haproxy',
  ];
}

function cloudWatchAgentConfig(logGroups: InstanceLogGroupNames): string {
  return `${JSON.stringify(
    {
      agent: { metrics_collection_interval: 60, run_as_user: 'root' },
      logs: {
        logs_collected: {
          files: {
            collect_list: logCollectList(logGroups),
          },
        },
      },
      metrics: {
        namespace: CLOUDWATCH_AGENT_METRIC_NAMESPACE,
        append_dimensions: { AutoScalingGroupName: '${aws:AutoScalingGroupName}', InstanceId: '${aws:InstanceId}' },
        metrics_collected: {
          mem: { measurement: ['mem_used_percent'] },
          disk: { measurement: ['used_percent'], resources: ['/'] },
          netstat: { measurement: ['tcp_established'] },
        },
      },
    },
    null,
    2,
  )}\n`;
}

function haproxyServiceDropIn(config: string): string {
  return [
    "# The gateway config instead of Debian's default. The CloudWatch agent ships files, not the",
    "# journal: the JSON access log (stdout) and haproxy's own messages (stderr: ALERTs, server",
    '# state changes, reloads) go to files of their own (the user data makes their directory).',
    '[Service]',
    `Environment="CONFIG=${config}"`,
    'RuntimeDirectory=haproxy',
    'RuntimeDirectoryPreserve=yes',
    `StandardOutput=append:${ACCESS_LOG_PATH}`,
    `StandardError=append:${HAPROXY_MESSAGES_LOG_PATH}`,
    '',
  ].join('\n');
}

/** The key-sync unit of core/instance/key-sync.ts, for the instance's secrets and its HAProxy (the admin socket the Looker server count is read from). */
function keySyncUnit(input: InstanceFilesInput, haproxyAdminSocket: string): KeySyncUnit {
  return renderKeySyncUnit({
    region: input.region,
    verificationKeysSecretArn: input.secrets.verificationKeys,
    backendClientCertificateSecretArn: input.secrets.backendClientCertificate,
    frontendCertificateSecretArn: input.secrets.frontendCertificate,
    frontendCertificateArn: input.frontendAcmCertificateArn,
    metricNamespace: input.metricNamespace,
    configDir: DEFAULT_CONFIG_DIR,
    logFile: KEY_SYNC_LOG_PATH,
    haproxyAdminSocket,
  });
}
