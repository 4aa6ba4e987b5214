/**
 * The thin adapter between the rotation and Secrets Manager (SDK v3): the calls the
 * four-step protocol makes, nothing more.
 */
import {
  DescribeSecretCommand,
  DescribeSecretCommandOutput,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';

export const AWSCURRENT = 'AWSCURRENT';
export const AWSPENDING = 'AWSPENDING';

export interface SecretValue {
  readonly versionId: string;
  readonly secretString: string;
}

export function isAwsError(error: unknown, name: string): boolean {
  return typeof error === 'object' && error !== null && (error as { name?: unknown }).name === name;
}

export class SecretStore {
  constructor(private readonly client: SecretsManagerClient) {}

  describe(secretId: string): Promise<DescribeSecretCommandOutput> {
    return this.client.send(new DescribeSecretCommand({ SecretId: secretId }));
  }

  async get(secretId: string, select: { versionId?: string; stage?: string }): Promise<SecretValue> {
    const out = await this.client.send(new GetSecretValueCommand({ SecretId: secretId, VersionId: select.versionId, VersionStage: select.stage }));
    if (out.SecretString === undefined || !out.VersionId) {
      throw new Error(`Secret ${secretId} version ${out.VersionId ?? select.versionId ?? select.stage} has no SecretString: the gateway stores JSON text.`);
    }
    return { versionId: out.VersionId, secretString: out.SecretString };
  }

  /** Like `get`, but undefined when the version, label or value does not exist. */
  async tryGet(secretId: string, select: { versionId?: string; stage?: string }): Promise<SecretValue | undefined> {
    try {
      return await this.get(secretId, select);
    } catch (error) {
      if (isAwsError(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  /**
   * PutSecretValue with the token as VersionId; without stages the version becomes
   * AWSCURRENT. Returns the labels the version has afterwards: a request that repeats an
   * existing version's value is ignored, labels included, so they may not be the ones asked for.
   */
  async put(secretId: string, token: string, secretString: string, stages?: string[]): Promise<string[]> {
    const out = await this.client.send(new PutSecretValueCommand({ SecretId: secretId, ClientRequestToken: token, SecretString: secretString, VersionStages: stages }));
    return out.VersionStages ?? [];
  }

  /** ListSecretVersionIds: every labelled version with its creation date. */
  async versions(secretId: string): Promise<{ versionId: string; stages: string[]; createdDate?: Date }[]> {
    const out = await this.client.send(new ListSecretVersionIdsCommand({ SecretId: secretId }));
    return (out.Versions ?? []).map((v) => ({ versionId: v.VersionId ?? '', stages: v.VersionStages ?? [], createdDate: v.CreatedDate }));
  }

  async updateStage(secretId: string, stage: string, move: { to?: string; from?: string }): Promise<void> {
    await this.client.send(
      new UpdateSecretVersionStageCommand({ SecretId: secretId, VersionStage: stage, MoveToVersionId: move.to, RemoveFromVersionId: move.from }),
    );
  }
}

/** The VersionId that holds `stage`, from DescribeSecret's VersionIdsToStages. */
export function versionWithStage(described: DescribeSecretCommandOutput, stage: string): string | undefined {
  return Object.entries(described.VersionIdsToStages ?? {}).find(([, stages]) => stages.includes(stage))?.[0];
}
