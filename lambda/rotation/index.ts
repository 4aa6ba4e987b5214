/**
 * The gateway's rotation Lambda: one handler for every kind of secret the gateway owns,
 * chosen by the secret's `cdk-looker-gateway:kind` tag. Logs one JSON line per step
 * (step, secret ARN, kind, token, outcome), never key material.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretsManagerRotationEvent } from 'aws-lambda';
import { readRotationSettings } from '../../core/rotation-contract';
import { stdoutSink } from '../shared/audit';
import type { LogEntry } from './kind';
import { rotate } from './protocol';
import { SecretStore } from './secret-store';

let client: SecretsManagerClient | undefined;

/**
 * Raw JSON lines on stdout, like the auth service's audit events: the Lambda's JSON log
 * format wraps console.log() output as a string in `message`, where metric filters on
 * `$.outcome` could not see it.
 */
function writeLog(entry: LogEntry): void {
  stdoutSink.write(JSON.stringify({ time: new Date().toISOString(), source: 'lg-rotation', ...entry }));
}

export async function handler(event: SecretsManagerRotationEvent): Promise<void> {
  client ??= new SecretsManagerClient({});
  let settings;
  try {
    settings = readRotationSettings(process.env);
  } catch (error) {
    writeLog({ step: event?.Step, secretArn: event?.SecretId, token: event?.ClientRequestToken, outcome: 'error', error: (error as Error).message });
    throw error;
  }
  await rotate(event, { store: new SecretStore(client), settings, log: writeLog, now: () => new Date() });
}
