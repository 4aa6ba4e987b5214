/**
 * The gateway's rotation Lambda: one handler for every kind of secret the gateway owns,
 * chosen by the secret's `cdk-looker-gateway:kind` tag. Logs one JSON line per step
 * (step, secret ARN, kind, token, outcome), never key material.
 *
 * The same function answers the hourly check for abandoned rotations: an EventBridge
 * schedule invokes it with `{"action": "clear-abandoned-rotations"}` (CLEAR_ABANDONED_ROTATIONS).
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SecretsManagerRotationEvent } from 'aws-lambda';
import { readRotationSettings } from '../../lib/keys/rotation-contract';
import { stdoutSink } from '../shared/audit';
import type { LogEntry } from './kind';
import { CLEAR_ABANDONED_ROTATIONS } from '../../lib/keys/rotation-contract';
import { clearAbandonedRotations, rotate } from './protocol';
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

export async function handler(event: SecretsManagerRotationEvent | { action?: string }): Promise<void> {
  client ??= new SecretsManagerClient({});
  const rotation = event as SecretsManagerRotationEvent;
  let settings;
  try {
    settings = readRotationSettings(process.env);
  } catch (error) {
    writeLog({ step: rotation?.Step, secretArn: rotation?.SecretId, token: rotation?.ClientRequestToken, outcome: 'error', error: (error as Error).message });
    throw error;
  }
  const deps = { store: new SecretStore(client), settings, log: writeLog, now: () => new Date() };
  if ((event as { action?: string })?.action === CLEAR_ABANDONED_ROTATIONS) {
    await clearAbandonedRotations(deps);
    return;
  }
  await rotate(rotation, deps);
}
