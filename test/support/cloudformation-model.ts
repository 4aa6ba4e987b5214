/**
 * A small model of what CloudFormation does with the gateway's Secrets Manager resources
 * when a synthesized template is deployed (created or updated) into a SecretsManagerModel.
 * Only the parts that decide what the secrets hold are modelled:
 *
 *   - AWS::SecretsManager::Secret (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secret.html):
 *     created with its SecretString and Tags. A changed SecretString is an update with "No
 *     interruption": the secret gets the new text as a new version, which UpdateSecret
 *     makes AWSCURRENT (the old one AWSPREVIOUS) ([API] UpdateSecret). An unchanged
 *     SecretString leaves the secret alone.
 *   - AWS::SecretsManager::RotationSchedule (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-rotationschedule.html):
 *     creating it, and every update of it, calls RotateSecret with its RotationLambdaARN and
 *     RotationRules; RotateImmediatelyOnUpdate (default true) "Determines whether to rotate
 *     the secret immediately or wait until the next scheduled rotation window when the
 *     rotation schedule is updated". An unchanged schedule calls nothing. A RotateSecret
 *     error fails the deployment (the model reports it; rollback is not modelled).
 *   - AWS::Lambda::Function behind a schedule's RotationLambdaARN: its environment becomes
 *     the rotation function's environment (through `setEnvironment`).
 *
 * Resources are applied in dependency order for these types (secrets, functions,
 * schedules); everything else in the template is ignored. Intrinsics resolved: Ref,
 * Fn::GetAtt (Arn), Fn::Join and the AWS:: pseudo parameters.
 */
import type { RotationFunction, RotationRules, SecretsManagerModel } from './secrets-manager-model';

type Json = unknown;
type Resource = { Type: string; Properties?: Record<string, Json> };
export interface TemplateJson {
  readonly Resources: Record<string, Resource>;
}

export interface CloudFormationModelOptions {
  /** The code of every function a rotation schedule points at (the rotation handler under test). */
  readonly rotationFunction: RotationFunction;
  /** Sets the rotation function's environment, as a deployment of its configuration does. */
  readonly setEnvironment: (variables: Record<string, string>) => void;
  /** @default 'GatewayStack' */
  readonly stackName?: string;
}

export interface DeployResult {
  /** false when a resource failed; `error` says which and why. */
  readonly ok: boolean;
  readonly error?: string;
  /** What the deployment did, in order, e.g. "create AWS::SecretsManager::Secret KeysSigningKeys...". */
  readonly actions: string[];
}

const ORDER = ['AWS::SecretsManager::Secret', 'AWS::Lambda::Function', 'AWS::SecretsManager::RotationSchedule'];

export class CloudFormationModel {
  private deployed: Record<string, Resource> = {};
  private readonly physicalIds = new Map<string, string>();
  private readonly stackName: string;

  constructor(
    private readonly secrets: SecretsManagerModel,
    private readonly options: CloudFormationModelOptions,
  ) {
    this.stackName = options.stackName ?? 'GatewayStack';
  }

  /** The physical id (secret ARN, function ARN) of a deployed resource. */
  physicalId(logicalId: string): string {
    const id = this.physicalIds.get(logicalId);
    if (!id) throw new Error(`Model: ${logicalId} is not deployed.`);
    return id;
  }

  /** Logical ids of deployed resources of a type whose logical id starts with `prefix`. */
  logicalIds(type: string, prefix = ''): string[] {
    return Object.entries(this.deployed)
      .filter(([id, r]) => r.Type === type && id.startsWith(prefix))
      .map(([id]) => id);
  }

  /** Creates or updates the stack to `template`. Resolves when CloudFormation would report completion. */
  async deploy(template: TemplateJson): Promise<DeployResult> {
    const actions: string[] = [];
    const functionsBehindSchedules = new Set(
      Object.values(template.Resources)
        .filter((r) => r.Type === 'AWS::SecretsManager::RotationSchedule')
        .map((r) => getAttTarget(r.Properties?.RotationLambdaARN))
        .filter((id): id is string => id !== undefined),
    );
    for (const type of ORDER) {
      for (const [logicalId, resource] of Object.entries(template.Resources).filter(([, r]) => r.Type === type)) {
        if (type === 'AWS::Lambda::Function' && !functionsBehindSchedules.has(logicalId)) continue;
        const before = this.deployed[logicalId];
        if (before && JSON.stringify(before.Properties) === JSON.stringify(resource.Properties)) continue;
        const verb = before ? 'update' : 'create';
        try {
          await this.apply(logicalId, resource, before);
        } catch (error) {
          return { ok: false, error: `${verb} ${type} ${logicalId} failed: ${(error as Error).name}: ${(error as Error).message}`, actions };
        }
        actions.push(`${verb} ${type} ${logicalId}`);
        this.deployed = { ...this.deployed, [logicalId]: resource };
      }
    }
    return { ok: true, actions };
  }

  private async apply(logicalId: string, resource: Resource, before: Resource | undefined): Promise<void> {
    const props = (resource.Properties ?? {}) as Record<string, Json>;
    switch (resource.Type) {
      case 'AWS::SecretsManager::Secret': {
        const secretString = props.SecretString === undefined ? undefined : String(this.resolve(props.SecretString));
        if (!before) {
          const created = this.secrets.createSecret({
            Name: (props.Name as string | undefined) ?? `${this.stackName}-${logicalId}`,
            SecretString: secretString,
            Description: props.Description as string | undefined,
            Tags: (props.Tags as { Key: string; Value: string }[] | undefined) ?? [],
          });
          this.physicalIds.set(logicalId, created.ARN);
        } else if (JSON.stringify(before.Properties?.SecretString) !== JSON.stringify(props.SecretString)) {
          this.secrets.updateSecret({ SecretId: this.physicalId(logicalId), SecretString: secretString });
        }
        return;
      }
      case 'AWS::Lambda::Function': {
        const arn = `arn:aws:lambda:${this.secrets.region}:${this.secrets.accountId}:function:${this.stackName}-${logicalId}`;
        this.physicalIds.set(logicalId, arn);
        this.secrets.registerRotationFunction(arn, this.options.rotationFunction);
        const variables = ((props.Environment as { Variables?: Record<string, Json> } | undefined)?.Variables ?? {}) as Record<string, Json>;
        this.options.setEnvironment(Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, String(this.resolve(v))])));
        return;
      }
      case 'AWS::SecretsManager::RotationSchedule': {
        const secretArn = String(this.resolve(props.SecretId));
        this.physicalIds.set(logicalId, secretArn);
        await this.secrets.rotateSecret({
          SecretId: secretArn,
          RotationLambdaARN: String(this.resolve(props.RotationLambdaARN)),
          RotationRules: props.RotationRules ? (this.resolve(props.RotationRules) as RotationRules) : undefined,
          RotateImmediately: props.RotateImmediatelyOnUpdate === undefined ? true : Boolean(props.RotateImmediatelyOnUpdate),
        });
        return;
      }
    }
  }

  private resolve(value: Json): Json {
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value === null || typeof value !== 'object') return value;
    const record = value as Record<string, Json>;
    if ('Ref' in record) {
      const ref = String(record.Ref);
      const pseudo: Record<string, string> = {
        'AWS::Region': this.secrets.region,
        'AWS::AccountId': this.secrets.accountId,
        'AWS::Partition': 'aws',
        'AWS::URLSuffix': 'amazonaws.com',
        'AWS::StackName': this.stackName,
      };
      return pseudo[ref] ?? this.physicalIds.get(ref) ?? `${this.stackName}-${ref}`;
    }
    if ('Fn::GetAtt' in record) {
      const [id] = record['Fn::GetAtt'] as [string, string];
      return this.physicalIds.get(id) ?? `${this.stackName}-${id}`;
    }
    if ('Fn::Join' in record) {
      const [separator, parts] = record['Fn::Join'] as [string, Json[]];
      return parts.map((p) => String(this.resolve(p))).join(separator);
    }
    return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, this.resolve(v)]));
  }
}

function getAttTarget(value: Json): string | undefined {
  const getAtt = (value as Record<string, Json> | undefined)?.['Fn::GetAtt'];
  return Array.isArray(getAtt) ? String(getAtt[0]) : undefined;
}
