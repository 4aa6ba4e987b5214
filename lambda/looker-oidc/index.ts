/**
 * The custom resource that configures Looker's OpenID Connect login to use the gateway's
 * broker (configure.ts). A Lambda-backed custom resource: CloudFormation invokes it with
 * the event and waits for the answer at the event's ResponseURL (cfn-response.ts), so the
 * handler finishes its work before the function's own timeout and always answers.
 * Logs one JSON line per step on stdout (the function's log group), never a secret.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent, Context } from 'aws-lambda';
import { stdoutSink } from '../shared/audit';
import { SecretsManagerSource } from '../shared/secrets';
import { CustomResourceAnswer, sendResponse } from './cfn-response';
import { handleRequest, NOT_CONFIGURED_ID } from './configure';

/** Time kept back from the function's timeout to deliver the answer. */
const ANSWER_MARGIN_MS = 5_000;

let secrets: SecretsManagerSource | undefined;

function log(entry: Record<string, unknown>): void {
  stdoutSink.write(JSON.stringify({ time: new Date().toISOString(), source: 'lg-looker-oidc', ...entry }));
}

export async function handler(event: CloudFormationCustomResourceEvent, context: Pick<Context, 'getRemainingTimeInMillis'>): Promise<void> {
  secrets ??= new SecretsManagerSource(new SecretsManagerClient({}));
  const budgetMs = Math.max(1_000, context.getRemainingTimeInMillis() - ANSWER_MARGIN_MS);
  let timer: NodeJS.Timeout | undefined;
  const outOfTime = new Promise<CustomResourceAnswer>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          Status: 'FAILED',
          PhysicalResourceId: event.RequestType === 'Create' ? NOT_CONFIGURED_ID : event.PhysicalResourceId,
          Reason: `Configuring Looker did not finish within ${Math.round(budgetMs / 1000)} s (the function's timeout less the time to answer CloudFormation): Looker's API is slow or unreachable.`,
        }),
      budgetMs,
    );
  });
  const answer = await Promise.race([handleRequest(event, { secrets, log }), outOfTime]);
  clearTimeout(timer);
  log({
    step: 'answer',
    requestType: event.RequestType,
    logicalResourceId: event.LogicalResourceId,
    status: answer.Status,
    physicalResourceId: answer.PhysicalResourceId,
    reason: answer.Reason,
  });
  await sendResponse(event, answer);
}
