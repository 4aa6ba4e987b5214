/**
 * The answer of a Lambda-backed custom resource, as CloudFormation documents it
 * (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html):
 * a JSON object PUT to the pre-signed `ResponseURL` of the event, with an empty
 * Content-Type, at most 4096 bytes. Until it arrives CloudFormation waits (up to an hour),
 * so the handler answers on every path, errors included.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';

export interface CustomResourceAnswer {
  readonly Status: 'SUCCESS' | 'FAILED';
  readonly Reason?: string;
  readonly PhysicalResourceId: string;
  readonly Data?: Record<string, string>;
}

/** CloudFormation refuses a response body over 4096 bytes; the reason is what may be long. */
const MAX_REASON_CHARACTERS = 1500;

export function responseBody(event: CloudFormationCustomResourceEvent, answer: CustomResourceAnswer): string {
  const reason = answer.Reason && answer.Reason.length > MAX_REASON_CHARACTERS ? `${answer.Reason.slice(0, MAX_REASON_CHARACTERS - 1)}…` : answer.Reason;
  return JSON.stringify({
    Status: answer.Status,
    Reason: reason ?? (answer.Status === 'SUCCESS' ? 'OK' : 'failed'),
    PhysicalResourceId: answer.PhysicalResourceId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    NoEcho: false,
    ...(answer.Data ? { Data: answer.Data } : {}),
  });
}

/** PUTs the answer to the event's ResponseURL; rejects if it cannot be delivered within `timeoutMs`. */
export function sendResponse(event: CloudFormationCustomResourceEvent, answer: CustomResourceAnswer, timeoutMs = 10_000): Promise<void> {
  const body = responseBody(event, answer);
  const url = new URL(event.ResponseURL);
  const transport = url.protocol === 'http:' ? http : https;
  return new Promise((resolve, reject) => {
    const request = transport.request(
      url,
      { method: 'PUT', headers: { 'content-type': '', 'content-length': String(Buffer.byteLength(body)) }, timeout: timeoutMs },
      (response) => {
        response.resume();
        response.on('end', () => (response.statusCode === 200 ? resolve() : reject(new Error(`The response URL answered HTTP ${response.statusCode}.`))));
      },
    );
    request.on('timeout', () => request.destroy(new Error(`The response URL did not answer within ${timeoutMs / 1000} s.`)));
    request.on('error', reject);
    request.end(body);
  });
}
