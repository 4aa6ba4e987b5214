/**
 * Secrets Manager's JSON 1.1 protocol on 127.0.0.1, answered by a SecretsManagerModel,
 * so the real AWS CLI (and anything else that speaks the protocol) can be pointed at it:
 *
 *   AWS_ENDPOINT_URL_SECRETS_MANAGER=<endpoint.url> AWS_ACCESS_KEY_ID=test \
 *   AWS_SECRET_ACCESS_KEY=test aws secretsmanager get-secret-value --secret-id ...
 *
 * The protocol itself (targets, errors, timestamps, injected network failures) is
 * dev/aws/json-protocol-endpoint.ts.
 */
import { JsonProtocolEndpoint, startJsonProtocolEndpoint } from './json-protocol-endpoint';
import type { SecretsManagerModel } from './secrets-manager-model';

export type SecretsManagerEndpoint = JsonProtocolEndpoint;

type Input<K extends keyof SecretsManagerModel> = SecretsManagerModel[K] extends (input: infer I) => unknown ? I : never;

const AWS_ERROR_NAMES = new Set([
  'ResourceNotFoundException',
  'ResourceExistsException',
  'InvalidRequestException',
  'InvalidParameterException',
  'AccessDeniedException',
  'DecryptionFailure',
  'InternalServiceError',
]);

export function startSecretsManagerEndpoint(model: SecretsManagerModel): Promise<SecretsManagerEndpoint> {
  return startJsonProtocolEndpoint({
    targetPrefix: 'secretsmanager',
    errorNames: AWS_ERROR_NAMES,
    operations: {
      GetSecretValue: (i) => model.getSecretValue(i as Input<'getSecretValue'>),
      DescribeSecret: (i) => model.describeSecret(i as Input<'describeSecret'>),
      ListSecretVersionIds: (i) => model.listSecretVersionIds(i as Input<'listSecretVersionIds'>),
      PutSecretValue: (i) => model.putSecretValue(i as Input<'putSecretValue'>),
      UpdateSecret: (i) => model.updateSecret(i as Input<'updateSecret'>),
      UpdateSecretVersionStage: (i) => model.updateSecretVersionStage(i as Input<'updateSecretVersionStage'>),
      CreateSecret: (i) => model.createSecret(i as Input<'createSecret'>),
      RotateSecret: (i) => model.rotateSecret(i as Input<'rotateSecret'>),
    },
  });
}
