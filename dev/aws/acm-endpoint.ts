/**
 * ACM's JSON 1.1 protocol (target prefix `CertificateManager`) on 127.0.0.1, answered by an
 * AcmModel, so the real AWS CLI can be pointed at it with AWS_ENDPOINT_URL_ACM:
 *
 *   AWS_ENDPOINT_URL_ACM=<endpoint.url> aws acm export-certificate --certificate-arn ... \
 *     --passphrase fileb://passphrase
 */
import type { AcmModel } from './acm-model';
import { ACM_ERROR_NAMES } from './acm-model';
import { JsonProtocolEndpoint, startJsonProtocolEndpoint } from './json-protocol-endpoint';

export function startAcmEndpoint(model: AcmModel): Promise<JsonProtocolEndpoint> {
  return startJsonProtocolEndpoint({
    targetPrefix: 'CertificateManager',
    errorNames: ACM_ERROR_NAMES,
    operations: {
      DescribeCertificate: (input) => model.describeCertificate(input),
      ExportCertificate: (input) => model.exportCertificate(input),
      RenewCertificate: (input) => model.renewCertificate(input),
    },
  });
}
