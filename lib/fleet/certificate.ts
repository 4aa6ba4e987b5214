/**
 * The fleet's part of the frontend certificate: with FrontendCertificate.acmExportable(),
 * an exportable public ACM certificate for the gateway's names, validated through the hosted
 * zone, and the instance role's permission to export that one certificate; for every source,
 * the permission to report the installed certificate's days until expiry.
 */
import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as route53 from 'aws-cdk-lib/aws-route53';
import { Construct } from 'constructs';
import { FrontendCertificate, FrontendCertificateSource } from '../keys/frontend-certificate';
import { GatewayPropsError } from '../private/validation';
import { CERTIFICATE_EXPIRY_METRIC } from '../../core/instance/certificate-expiry';

/** The namespace of the gateway's own metrics when none is given: the observability's default too. */
export function defaultMetricNamespace(scope: Construct): string {
  return `LookerGateway/${Stack.of(scope).stackName}`;
}

/** True when `name` is `zoneName` or a name inside it (tokens pass: they are checked at deploy). */
export function nameInZone(name: string, zoneName: string): boolean {
  if (Token.isUnresolved(name) || Token.isUnresolved(zoneName)) return true;
  const zone = zoneName.toLowerCase().replace(/\.$/, '');
  const host = name.toLowerCase().replace(/\.$/, '');
  return host === zone || host.endsWith(`.${zone}`);
}

/** Every name must lie in the hosted zone: its records and the certificate's validation records go there. */
export function assertNamesInZone(where: string, zone: route53.IHostedZone, names: ReadonlyArray<readonly [string, string]>): void {
  for (const [prop, name] of names) {
    if (!nameInZone(name, zone.zoneName)) {
      throw new GatewayPropsError(
        where,
        `${prop} ${JSON.stringify(name)} is not in the hosted zone ${JSON.stringify(zone.zoneName)}: its DNS record and the certificate's validation record go into that zone. Give the zone that holds ${name} (hostedZoneName "${name.split('.').slice(1).join('.')}" or a parent), or a name inside ${zone.zoneName}.`,
      );
    }
  }
}

export interface FleetCertificateOptions {
  readonly choice: FrontendCertificate;
  readonly hostedZone?: route53.IHostedZone;
  readonly domainName: string;
  readonly machineHostName?: string;
}

/** The exportable ACM certificate of FrontendCertificate.acmExportable(), or undefined for the other sources. */
export function newFrontendAcmCertificate(scope: Construct, id: string, where: string, options: FleetCertificateOptions): acm.Certificate | undefined {
  if (options.choice.source !== FrontendCertificateSource.ACM_EXPORTABLE) return undefined;
  if (!options.hostedZone) {
    throw new GatewayPropsError(
      where,
      'FrontendCertificate.acmExportable() needs hostedZone: ACM validates the certificate through DNS records in that zone. Give hostedZone (cdk.json: hostedZoneId and hostedZoneName), or use FrontendCertificate.fromSecret(secret) with your own certificate.',
    );
  }
  const names = [options.domainName, ...(options.machineHostName && options.machineHostName !== options.domainName ? [options.machineHostName] : [])];
  return new acm.Certificate(scope, id, {
    domainName: options.domainName,
    subjectAlternativeNames: names.length > 1 ? names.slice(1) : undefined,
    validation: acm.CertificateValidation.fromDns(options.hostedZone),
    allowExport: true,
    keyAlgorithm: options.choice.keyAlgorithm,
  });
}

/**
 * key-sync may describe and export this certificate and no other (the Service Authorization
 * Reference lists the certificate ARN as the resource of both actions).
 */
export function grantExportCertificate(role: iam.IRole, certificate: acm.ICertificate): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'ExportFrontendCertificate',
      actions: ['acm:DescribeCertificate', 'acm:ExportCertificate'],
      resources: [certificate.certificateArn],
    }),
  );
}

/** key-sync's expiry metric: PutMetricData into the gateway's namespace only. */
export function grantCertificateExpiryMetric(role: iam.IRole, namespace: string): void {
  role.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'CertificateExpiryMetric',
      actions: ['cloudwatch:PutMetricData'],
      resources: ['*'],
      conditions: { StringEquals: { 'cloudwatch:namespace': namespace } },
    }),
  );
}

/** The fleet-wide metric key-sync reports: the smallest value is the certificate closest to expiry. */
export function certificateExpiryMetric(namespace: string, props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace,
    metricName: CERTIFICATE_EXPIRY_METRIC,
    statistic: 'Minimum',
    period: Duration.hours(1),
    label: 'Days until the installed frontend certificate expires',
    ...props,
  });
}
