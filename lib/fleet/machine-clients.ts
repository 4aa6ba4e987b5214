/**
 * Machine clients (scripts, AI agents) as the constructs take them: the client, the routes
 * where a client certificate replaces the session, and the CA that certificates chain to.
 */
import { readFileSync } from 'node:fs';
import { Token } from 'aws-cdk-lib';
import type { MachineClient, MachineRoutes } from '../../core/haproxy/options';
import { InstanceMachineClients } from '../../core/instance/user-data';
import { clientCaProblems, clientCrlProblems } from '../private/client-certificates';
import { GatewayPropsError } from '../private/validation';

export type { MachineClient, MachineRoutes };

export interface ClientCertificateAuthorityPemOptions {
  /**
   * A certificate revocation list in PEM, checked on every handshake. OpenSSL treats a
   * CRL past its nextUpdate as a verification error, so redeploy a fresh CRL before then.
   * @default - no CRL: remove a client from `machineClients` to revoke it
   */
  readonly crlPem?: string;
}

export interface ClientCertificateAuthorityFileOptions {
  /**
   * A file with a certificate revocation list in PEM, read at synth (see `crlPem`).
   * @default - no CRL: remove a client from `machineClients` to revoke it
   */
  readonly crlFile?: string;
}

/**
 * The CA(s) that machine clients' certificates must chain to, and an optional CRL. Both are
 * public data: they travel in the launch template with the rest of HAProxy's files, are
 * checked at synth, and a change rolls the fleet.
 */
export class ClientCertificateAuthority {
  /**
   * From PEM text: one or more CA certificates. A token (for example an SSM parameter's
   * value) is accepted but not checked at synth, and changing its value later does not
   * roll the fleet.
   */
  public static fromPem(caPem: string, options: ClientCertificateAuthorityPemOptions = {}): ClientCertificateAuthority {
    return new ClientCertificateAuthority('ClientCertificateAuthority.fromPem', caPem, options.crlPem);
  }

  /** From files read at synth (relative paths from the directory `cdk` runs in), for example a CA bundle kept in the repository. */
  public static fromFile(caFile: string, options: ClientCertificateAuthorityFileOptions = {}): ClientCertificateAuthority {
    const read = (what: string, file: string): string => {
      try {
        return readFileSync(file, 'utf8');
      } catch (error) {
        throw new GatewayPropsError(
          'ClientCertificateAuthority.fromFile',
          `${what} ${JSON.stringify(file)} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): give the path of a PEM file, relative to the directory cdk runs in or absolute.`,
        );
      }
    };
    return new ClientCertificateAuthority(
      `ClientCertificateAuthority.fromFile(${JSON.stringify(caFile)})`,
      read('caFile', caFile),
      options.crlFile === undefined ? undefined : read('crlFile', options.crlFile),
    );
  }

  /** The CA certificates, PEM (rendered as tls/client-ca.pem on instances). */
  public readonly caPem: string;
  /** The CRL, PEM (rendered as tls/client-crl.pem). */
  public readonly crlPem?: string;

  private constructor(where: string, caPem: string, crlPem: string | undefined) {
    if (!Token.isUnresolved(caPem)) {
      const problems = clientCaProblems(caPem);
      if (problems.length > 0) throw new GatewayPropsError(where, `the client CA PEM is not usable: ${problems.join(' ')}`);
    }
    if (crlPem !== undefined && !Token.isUnresolved(crlPem)) {
      const problems = clientCrlProblems(crlPem);
      if (problems.length > 0) throw new GatewayPropsError(where, `the client CRL PEM is not usable: ${problems.join(' ')}`);
    }
    this.caPem = caPem;
    this.crlPem = crlPem;
  }
}

/** The machine-client settings of a fleet, as GatewayFleetProps carries them. */
export interface MachineClientSettings {
  readonly machineClients?: MachineClient[];
  readonly machineRoutes?: MachineRoutes;
  readonly clientCertificateAuthority?: ClientCertificateAuthority;
}

/** The machine-client part of the instance files, after the checks only the construct can make (the renderer checks the rest). */
export function machineClientsInput(where: string, props: MachineClientSettings, placeholder: (value: string) => string): InstanceMachineClients | undefined {
  const routes = props.machineRoutes;
  const clients = props.machineClients ?? [];
  const ca = props.clientCertificateAuthority;
  const hasRoutes = routes !== undefined && ((routes.pathPrefixes?.length ?? 0) > 0 || routes.hostName !== undefined);
  if (routes !== undefined && !hasRoutes) {
    throw new GatewayPropsError(where, 'machineRoutes has neither pathPrefixes nor hostName: give one of them, or leave machineRoutes unset.');
  }
  // Clients without routes: the renderer rejects them with its own message.
  if (clients.length > 0 && !hasRoutes) return { clients, routes: {} };
  if (!hasRoutes) {
    if (ca)
      throw new GatewayPropsError(
        where,
        'clientCertificateAuthority is set but there are no machineRoutes: add machineRoutes and machineClients, or leave clientCertificateAuthority unset.',
      );
    return undefined;
  }
  if (!ca) {
    throw new GatewayPropsError(
      where,
      'machineRoutes are set but clientCertificateAuthority is not: HAProxy needs the CA that client certificates chain to. Give clientCertificateAuthority: ClientCertificateAuthority.fromFile("certs/machine-ca.pem") (or .fromPem(pem)).',
    );
  }
  return {
    clients,
    routes: { pathPrefixes: routes!.pathPrefixes, hostName: routes!.hostName === undefined ? undefined : placeholder(routes!.hostName) },
    caPem: placeholder(ca.caPem),
    crlPem: ca.crlPem === undefined ? undefined : placeholder(ca.crlPem),
  };
}
