/**
 * The EC2 instance metadata service as an instance with IMDSv2 required sees it
 * (launch template HttpTokens=required), on 127.0.0.1:
 *   - PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds (1-21600) gives a token;
 *   - every GET needs X-aws-ec2-metadata-token, else 401;
 *   - /latest/meta-data/instance-id;
 *   - /latest/meta-data/iam/security-credentials/ lists the instance profile's role, and
 *     /latest/meta-data/iam/security-credentials/<role> its temporary credentials
 *     (Code, LastUpdated, Type AWS-HMAC, AccessKeyId, SecretAccessKey, Token, Expiration).
 * Documented in the EC2 user guide, "Use the Instance Metadata Service to access instance
 * metadata" and "Retrieve security credentials from instance metadata". The AWS CLI finds
 * it through AWS_EC2_METADATA_SERVICE_ENDPOINT.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface InstanceMetadataService {
  readonly url: string;
  readonly instanceId: string;
  /** The temporary access key id of the instance role: AWS calls signed with it come from the instance. */
  readonly accessKeyId: string;
  close(): Promise<void>;
}

export async function startInstanceMetadataService(options: { instanceId: string; roleName: string }): Promise<InstanceMetadataService> {
  const tokens = new Set<string>();
  const accessKeyId = `ASIA${randomBytes(8).toString('hex').toUpperCase()}`;
  const credentials = {
    Code: 'Success',
    LastUpdated: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    Type: 'AWS-HMAC',
    AccessKeyId: accessKeyId,
    SecretAccessKey: randomBytes(20).toString('base64'),
    Token: randomBytes(48).toString('base64'),
    Expiration: new Date(Date.now() + 6 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
  };
  const server = createServer((req, res) => {
    const text = (status: number, body: string, type = 'text/plain') => res.writeHead(status, { 'Content-Type': type }).end(body);
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return text(400, 'Bad Request');
      const token = randomUUID();
      tokens.add(token);
      return text(200, token);
    }
    if (req.method !== 'GET') return text(405, 'Method Not Allowed');
    if (!tokens.has(String(req.headers['x-aws-ec2-metadata-token'] ?? ''))) return text(401, 'Unauthorized');
    switch (req.url) {
      case '/latest/meta-data/instance-id':
        return text(200, options.instanceId);
      case '/latest/meta-data/iam/security-credentials/':
      case '/latest/meta-data/iam/security-credentials':
        return text(200, options.roleName);
      case `/latest/meta-data/iam/security-credentials/${options.roleName}`:
        return text(200, JSON.stringify(credentials), 'application/json');
      default:
        return text(404, 'Not Found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    instanceId: options.instanceId,
    accessKeyId,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
