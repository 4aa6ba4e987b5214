/**
 * CloudWatch's PutMetricData on 127.0.0.1, in the query protocol the AWS CLI of Debian 13
 * speaks to CloudWatch (form-encoded POST, API version 2010-08-01, XML answers), so the CLI
 * can be pointed at it with AWS_ENDPOINT_URL_CLOUDWATCH. Documented semantics modelled
 * (CloudWatch API Reference, PutMetricData): MetricData.member.N with MetricName, Value,
 * Unit, Timestamp and Dimensions.member.M (Name, Value); a namespace may not start with
 * "AWS/" (InvalidParameterValue); a value must be a finite number. Large bodies may come
 * gzip-compressed (the CLI compresses PutMetricData above 10 KB). Anything else gets
 * InvalidAction.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { accessKeyIdOf } from './sigv4';

export interface MetricDatum {
  readonly namespace: string;
  readonly metricName: string;
  readonly value: number;
  readonly unit?: string;
  readonly dimensions: Record<string, string>;
  /** When the endpoint received it. */
  readonly receivedAt: Date;
  readonly accessKeyId: string;
}

export interface CloudWatchEndpoint {
  readonly url: string;
  /** Every datum put, in order. */
  readonly data: MetricDatum[];
  close(): Promise<void>;
}

const NAMESPACE = 'xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"';

export async function startCloudWatchEndpoint(): Promise<CloudWatchEndpoint> {
  const data: MetricDatum[] = [];
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw) : raw;
    const form = new URLSearchParams(body.toString('utf8'));
    const reply = (status: number, xml: string) => {
      res.writeHead(status, { 'Content-Type': 'text/xml' });
      res.end(`<?xml version="1.0"?>\n${xml}`);
    };
    const error = (code: string, message: string) =>
      reply(
        400,
        `<ErrorResponse ${NAMESPACE}><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
      );
    if (form.get('Action') !== 'PutMetricData') return error('InvalidAction', `This endpoint answers PutMetricData only, not ${form.get('Action')}.`);
    const namespace = form.get('Namespace') ?? '';
    if (!namespace || namespace.startsWith('AWS/'))
      return error('InvalidParameterValue', `The namespace ${namespace} is not allowed: it is empty or starts with AWS/.`);
    const received: MetricDatum[] = [];
    for (let n = 1; form.has(`MetricData.member.${n}.MetricName`); n += 1) {
      const prefix = `MetricData.member.${n}`;
      const value = Number(form.get(`${prefix}.Value`));
      if (!Number.isFinite(value)) return error('InvalidParameterValue', `${prefix}.Value is not a finite number.`);
      const dimensions: Record<string, string> = {};
      for (let m = 1; form.has(`${prefix}.Dimensions.member.${m}.Name`); m += 1) {
        dimensions[form.get(`${prefix}.Dimensions.member.${m}.Name`)!] = form.get(`${prefix}.Dimensions.member.${m}.Value`) ?? '';
      }
      received.push({
        namespace,
        metricName: form.get(`${prefix}.MetricName`)!,
        value,
        unit: form.get(`${prefix}.Unit`) ?? undefined,
        dimensions,
        receivedAt: new Date(),
        accessKeyId: accessKeyIdOf(req.headers.authorization),
      });
    }
    if (received.length === 0) return error('MissingParameter', 'The request has no MetricData.');
    data.push(...received);
    reply(200, `<PutMetricDataResponse ${NAMESPACE}><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PutMetricDataResponse>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    data,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
