/**
 * The two CloudFormation calls an instance makes, on 127.0.0.1, in CloudFormation's query
 * protocol (form-encoded POST, XML answers, API version 2010-05-15), so the real AWS CLI
 * can be pointed at it with AWS_ENDPOINT_URL_CLOUDFORMATION:
 *   - DescribeStackResource: the resource's Metadata (the launch template's files);
 *   - SignalResource: an instance's SUCCESS or FAILURE for a resource that waits for
 *     signals (CreationPolicy/UpdatePolicy). Documented semantics modelled: the status is
 *     SUCCESS or FAILURE, UniqueId names the signalling instance; a FAILURE makes
 *     CloudFormation fail the resource (`failed()` says whether one came).
 * Unknown actions and resources get CloudFormation's ValidationError.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { accessKeyIdOf } from './sigv4';

export interface ResourceSignal {
  readonly logicalResourceId: string;
  readonly uniqueId: string;
  readonly status: string;
}

export interface CloudFormationEndpoint {
  readonly url: string;
  /** Every call's form parameters, in order. */
  readonly calls: Array<Record<string, string>>;
  /** SignalResource calls, in order. */
  readonly signals: ResourceSignal[];
  /** Access key ids that signed the calls (SigV4 Authorization header). */
  readonly accessKeyIds: string[];
  /** True once any instance signalled FAILURE (CloudFormation would roll back). */
  failed(): boolean;
  close(): Promise<void>;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

const NAMESPACE = 'xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"';

export async function startCloudFormationEndpoint(options: {
  stackName: string;
  metadataByLogicalId: Record<string, unknown>;
  signalledResources: string[];
}): Promise<CloudFormationEndpoint> {
  const calls: Array<Record<string, string>> = [];
  const signals: ResourceSignal[] = [];
  const accessKeyIds: string[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const form = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
    calls.push(form);
    accessKeyIds.push(accessKeyIdOf(req.headers.authorization));
    const reply = (status: number, body: string) => {
      res.writeHead(status, { 'Content-Type': 'text/xml' });
      res.end(`<?xml version="1.0"?>\n${body}`);
    };
    const validationError = (message: string) =>
      reply(
        400,
        `<ErrorResponse ${NAMESPACE}><Error><Type>Sender</Type><Code>ValidationError</Code><Message>${xmlEscape(message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
      );
    if (form.StackName !== options.stackName) {
      validationError(`Stack with id ${form.StackName ?? '?'} does not exist`);
    } else if (form.Action === 'DescribeStackResource' && options.metadataByLogicalId[form.LogicalResourceId] !== undefined) {
      reply(
        200,
        `<DescribeStackResourceResponse ${NAMESPACE}><DescribeStackResourceResult><StackResourceDetail>` +
          `<StackName>${xmlEscape(form.StackName)}</StackName><LogicalResourceId>${xmlEscape(form.LogicalResourceId)}</LogicalResourceId>` +
          `<ResourceType>AWS::EC2::LaunchTemplate</ResourceType><ResourceStatus>CREATE_COMPLETE</ResourceStatus><LastUpdatedTimestamp>2026-01-01T00:00:00Z</LastUpdatedTimestamp>` +
          `<Metadata>${xmlEscape(JSON.stringify(options.metadataByLogicalId[form.LogicalResourceId]))}</Metadata>` +
          `</StackResourceDetail></DescribeStackResourceResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeStackResourceResponse>`,
      );
    } else if (
      form.Action === 'SignalResource' &&
      options.signalledResources.includes(form.LogicalResourceId) &&
      ['SUCCESS', 'FAILURE'].includes(form.Status) &&
      form.UniqueId
    ) {
      signals.push({ logicalResourceId: form.LogicalResourceId, uniqueId: form.UniqueId, status: form.Status });
      reply(200, `<SignalResourceResponse ${NAMESPACE}><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></SignalResourceResponse>`);
    } else {
      validationError(`Unexpected ${form.Action ?? '?'} for ${form.LogicalResourceId ?? '?'} (status ${form.Status ?? '-'})`);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    signals,
    accessKeyIds,
    failed: () => signals.some((signal) => signal.status === 'FAILURE'),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
