/**
 * Machine clients (scripts, AI agents): client certificates asked for on the machine routes
 * only, and each certificate, by its SHA-256, mapped to an identity and a policy of methods
 * and path prefixes.
 */
import * as path from 'node:path';
import { GATEWAY_FILES } from '../layout';
import { AUTH_METHODS, HEADERS } from '../session-contract';
import { upstreamCookieRules } from './hygiene';
import { DECISIONS } from './logging';
import { RENDERED_FILES } from './names';
import { ConfigPath, jsonError, pathPrefixAcl, Section, words } from './section';
import { ResolvedGatewayOptions } from './validate';

/** True when the options have machine routes (path prefixes or a host name of their own). */
export function hasMachineRoutes(o: ResolvedGatewayOptions): boolean {
  return o.machineRoutes.pathPrefixes.length > 0 || o.machineRoutes.hostName !== undefined;
}

/**
 * Client certificates are asked for on a separate host name only (a crt-list line with its
 * own `verify optional`), so browsers on the main host never see a certificate picker. True
 * when machine clients have a host name and no path prefixes on the main host.
 */
export function usesMachineHostCrtList(o: ResolvedGatewayOptions): boolean {
  return o.machineRoutes.hostName !== undefined && o.machineRoutes.pathPrefixes.length === 0;
}

/** The crt-list: the frontend certificate for every name, with client-certificate options on the machine host. */
export function renderFrontendCrtList(o: ResolvedGatewayOptions): string {
  const file = (relative: string) => path.posix.join(o.configDir, relative);
  const certificate = file(GATEWAY_FILES.frontendCertificate);
  const options = words(`verify optional ca-file ${file(GATEWAY_FILES.clientCa)}`, o.clientCrl && `crl-file ${file(GATEWAY_FILES.clientCrl)}`);
  // The first line serves every name of the certificate except the machine host (names
  // taken from the certificate would otherwise win over the second line's filter).
  return `${certificate} !${o.machineRoutes.hostName}\n${certificate} [${options}] ${o.machineRoutes.hostName}\n`;
}

/** The public listener's bind line: the frontend certificate, and the client-certificate settings when machine routes need them. */
export function tlsBind(o: ResolvedGatewayOptions, file: ConfigPath): string {
  if (usesMachineHostCrtList(o)) {
    return words(
      `bind ${o.listener.bindAddress}:${o.listener.port}`,
      o.listener.acceptProxyProtocol && 'accept-proxy',
      `ssl crt-list ${file(RENDERED_FILES.frontendCrtList)}`,
      'alpn h2,http/1.1',
      'ca-ignore-err all crt-ignore-err all',
    );
  }
  const machine = o.machineRoutes.pathPrefixes.length > 0 || o.machineRoutes.hostName !== undefined;
  return words(
    `bind ${o.listener.bindAddress}:${o.listener.port}`,
    o.listener.acceptProxyProtocol && 'accept-proxy',
    `ssl crt ${file(GATEWAY_FILES.frontendCertificate)}`,
    'alpn h2,http/1.1',
    machine && `verify optional ca-file ${file(GATEWAY_FILES.clientCa)}`,
    machine && o.clientCrl && `crl-file ${file(GATEWAY_FILES.clientCrl)}`,
    machine && 'ca-ignore-err all crt-ignore-err all',
  );
}

export function renderMachineRules(f: Section, o: ResolvedGatewayOptions, file: ConfigPath, machineCondition: string): void {
  f.note(
    '5. Machine clients: a verified client certificate, mapped by its SHA-256 to an identity and a policy.\nNo session cookie is needed or used here.',
  ).add(
    `http-request set-var(txn.machine_route) bool(1) if ${machineCondition}`,
    'acl is_machine_route var(txn.machine_route) -m bool',
    'acl client_cert_used ssl_c_used',
    'acl client_cert_verified ssl_c_verify 0',
    'http-request set-var(txn.route) str(machine) if is_machine_route',
    `http-request set-var(txn.machine_identity) var(txn.client_cert_sha256),map(${file(GATEWAY_FILES.machineClientMap)}) if is_machine_route client_cert_used client_cert_verified`,
    'acl machine_identity_known var(txn.machine_identity) -m found',
  );
  o.machineClients.forEach((client, index) => {
    const id = `machine_client_${index}`;
    f.add(
      `acl ${id}_is var(txn.machine_identity) -m str ${client.name}`,
      `acl ${id}_method_allowed method ${client.allowedMethods.join(' ')}`,
      ...pathPrefixAcl(`${id}_path_allowed`, client.allowedPathPrefixes),
      `http-request set-var(txn.machine_allowed) bool(1) if is_machine_route machine_identity_known ${id}_is ${id}_method_allowed ${id}_path_allowed`,
    );
  });
  const deny = (status: number, error: string, reason: string, condition: string) =>
    f.add(
      `http-request set-var(txn.decision) str(${DECISIONS.machineDenied}) if is_machine_route ${condition}`,
      `http-request set-var-fmt(txn.reason) "${reason}" if is_machine_route ${condition}`,
      `http-request return status ${status} content-type application/json hdr Cache-Control no-store lf-string ${jsonError(error, '%[var(txn.reason)]')} if is_machine_route ${condition}`,
    );
  deny(401, 'unauthorized', 'a client certificate is required on this route', '!client_cert_used');
  deny(403, 'forbidden', 'the client certificate is not trusted (verify error %[ssl_c_verify])', '!client_cert_verified');
  deny(403, 'forbidden', 'the client certificate is not registered', '!machine_identity_known');
  deny(403, 'forbidden', 'the method or path is outside this client policy', `!{ var(txn.machine_allowed) -m bool }`);
  f.add(
    `http-request set-var(txn.decision) str(${DECISIONS.machineAllowed}) if is_machine_route`,
    'http-request set-var(txn.user) var(txn.machine_identity) if is_machine_route',
    `http-request set-var(txn.auth_method) str(${AUTH_METHODS.clientCertificate}) if is_machine_route`,
    `http-request add-header ${HEADERS.user} %[var(txn.machine_identity)] if is_machine_route`,
    `http-request add-header ${HEADERS.authMethod} ${AUTH_METHODS.clientCertificate} if is_machine_route`,
    ...upstreamCookieRules('is_machine_route'),
    'http-request allow if is_machine_route',
  );
}
