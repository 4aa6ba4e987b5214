/**
 * How the gateway fleet reaches Looker: a fixed list of hosts, or one DNS name that
 * resolves to the Looker nodes, plus the CA that Looker's TLS certificates chain to and,
 * when Looker runs in the same VPC, its security group so the fleet is let in.
 */
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Token } from 'aws-cdk-lib';
import { isHostName, isIpv4Address } from '../../core/net';
import { GatewayPropsError } from '../private/validation';

/** Looker's web UI port. */
export const LOOKER_WEB_PORT = 9999;
/** Looker's API port. */
export const LOOKER_API_PORT = 19999;
/** Looker's unauthenticated liveness endpoint, used by HAProxy's health checks. */
export const LOOKER_HEALTH_PATH = '/alive';

export interface LookerBackendOptions {
  /**
   * Port of Looker's web UI on every node: the gateway fleet sends every request here.
   * @default 9999
   */
  readonly webPort?: number;
  /**
   * Port of Looker's API on every node, used only by what calls Looker's API directly from
   * the VPC (the LookerOidcConfiguration function); the fleet never connects to it.
   * @default 19999
   */
  readonly apiPort?: number;
  /**
   * PEM of the CA (or CAs) that Looker's server certificates chain to. HAProxy verifies
   * Looker's certificate against it (`verify required`).
   * @default - the instance's system trust store (/etc/ssl/certs/ca-certificates.crt),
   * right when Looker's certificate comes from a public CA
   */
  readonly caCertificatePem?: string;
  /**
   * Name HAProxy sends as SNI and expects in Looker's certificate.
   * @default - the host name itself for DNS names; required when the hosts are IP addresses
   * and Looker's certificate carries a DNS name (HAProxy then checks that name)
   */
  readonly serverName?: string;
  /**
   * Looker's security group (or anything with connections), when Looker runs in the same
   * VPC: the fleet is allowed in on the web and API ports.
   * @default - no security group changes; open the ports to the fleet yourself
   */
  readonly peer?: ec2.IConnectable;
}

/** The resolved description of a Looker backend, read by the fleet and the config renderer. */
export interface LookerBackendConfig {
  /** Host names or IPv4 addresses of the Looker nodes (one entry for a DNS name). */
  readonly hosts: string[];
  /** True when `hosts` is one DNS name that resolves to every node (HAProxy resolves it at run time). */
  readonly resolvesByDns: boolean;
  readonly webPort: number;
  readonly apiPort: number;
  readonly healthPath: string;
  readonly caCertificatePem?: string;
  readonly serverName?: string;
}

export class LookerBackend {
  /**
   * Looker nodes at fixed host names or IPv4 addresses (for example the private IPs of a
   * Looker cluster's nodes).
   */
  public static fromHosts(hosts: string[], options: LookerBackendOptions = {}): LookerBackend {
    const where = 'LookerBackend.fromHosts';
    if (!Token.isUnresolved(hosts) && hosts.length === 0) {
      throw new GatewayPropsError(
        where,
        'the list of Looker hosts is empty. Give at least one host name or IPv4 address of a Looker node, for example ["10.0.3.10", "10.0.4.10"].',
      );
    }
    const seen = new Set<string>();
    for (const host of hosts) {
      if (Token.isUnresolved(host)) continue;
      if (!isHostName(host) && !isIpv4Address(host)) {
        throw new GatewayPropsError(
          where,
          `Looker host ${JSON.stringify(host)} is neither a host name nor an IPv4 address. Give bare names or addresses, without scheme or port (ports go in webPort/apiPort).`,
        );
      }
      if (seen.has(host)) throw new GatewayPropsError(where, `Looker host ${JSON.stringify(host)} is listed twice. List every node once.`);
      seen.add(host);
    }
    return new LookerBackend(where, [...hosts], false, options);
  }

  /** Looker nodes behind one DNS name (for example an internal load balancer or a Route 53 record with every node). */
  public static fromDnsName(dnsName: string, options: LookerBackendOptions = {}): LookerBackend {
    const where = 'LookerBackend.fromDnsName';
    if (!Token.isUnresolved(dnsName) && !isHostName(dnsName)) {
      throw new GatewayPropsError(
        where,
        `${JSON.stringify(dnsName)} is not a DNS name. Give the name Looker is reachable at, for example "looker.internal.example.com".`,
      );
    }
    return new LookerBackend(where, [dnsName], true, options);
  }

  public readonly config: LookerBackendConfig;
  private readonly peer?: ec2.IConnectable;

  private constructor(where: string, hosts: string[], resolvesByDns: boolean, options: LookerBackendOptions) {
    const webPort = options.webPort ?? LOOKER_WEB_PORT;
    const apiPort = options.apiPort ?? LOOKER_API_PORT;
    for (const [prop, port] of [
      ['webPort', webPort],
      ['apiPort', apiPort],
    ] as const) {
      if (!Token.isUnresolved(port) && (!Number.isInteger(port) || port < 1 || port > 65535)) {
        throw new GatewayPropsError(
          where,
          `${prop} is ${port}; use a TCP port from 1 to 65535 (Looker's defaults are 9999 for the web UI and 19999 for the API).`,
        );
      }
    }
    const ca = options.caCertificatePem;
    if (ca !== undefined && !Token.isUnresolved(ca) && !/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(ca)) {
      throw new GatewayPropsError(
        where,
        'caCertificatePem is not a PEM certificate. Give the CA certificate(s) that Looker\'s TLS certificate chains to, starting with "-----BEGIN CERTIFICATE-----".',
      );
    }
    if (options.serverName !== undefined && !Token.isUnresolved(options.serverName) && !isHostName(options.serverName)) {
      throw new GatewayPropsError(
        where,
        `serverName ${JSON.stringify(options.serverName)} is not a DNS name. Give the name in Looker's certificate, for example "looker.internal.example.com".`,
      );
    }
    this.config = {
      hosts,
      resolvesByDns,
      webPort,
      apiPort,
      healthPath: LOOKER_HEALTH_PATH,
      caCertificatePem: ca,
      serverName: options.serverName ?? (resolvesByDns ? hosts[0] : undefined),
    };
    this.peer = options.peer;
  }

  /**
   * Lets `client` reach Looker's API port (or `port`) when Looker's security group is known:
   * for example the function that configures Looker's OpenID Connect login.
   */
  public allowApiAccessFrom(client: ec2.IConnectable, port?: number): void {
    if (!this.peer) return;
    const apiPort = port ?? this.config.apiPort;
    this.peer.connections.allowFrom(client, ec2.Port.tcp(apiPort), `Looker API port ${apiPort}`);
  }

  /**
   * Lets `fleet` reach Looker's web port when Looker's security group is known. Only the web
   * port: HAProxy sends every request there (Looker serves its API under /api/ on it too);
   * the API port is opened only to what calls it directly (allowApiAccessFrom).
   */
  public allowFrom(fleet: ec2.IConnectable): void {
    if (!this.peer) return;
    const port = this.config.webPort;
    this.peer.connections.allowFrom(fleet, ec2.Port.tcp(port), `Looker gateway fleet to Looker port ${port}`);
  }
}
