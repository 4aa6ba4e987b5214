import type { ResolvedRotationSettings } from '../../lib/keys/rotation-contract';
import type { SecretStore } from './secret-store';

export type LogEntry = Record<string, unknown>;
export type Log = (entry: LogEntry) => void;

export interface RotationContext {
  readonly store: SecretStore;
  readonly settings: ResolvedRotationSettings;
  /** ARN of the secret being rotated. */
  readonly secretArn: string;
  /** ClientRequestToken: the VersionId of the AWSPENDING version. */
  readonly token: string;
  readonly now: Date;
  readonly log: Log;
}

/** What one kind of secret does in each step; the protocol around it lives in protocol.ts. */
export interface KindRotation {
  /** The new value (SecretString), made from the AWSCURRENT value. */
  create(current: string, context: RotationContext): Promise<string>;
  /** Puts the AWSPENDING value into service (for signing keys: publishes the public keys). */
  set(pending: string, context: RotationContext): Promise<void>;
  /** Proves the AWSPENDING value works; throws what is wrong. */
  test(pending: string, context: RotationContext): Promise<void>;
  /**
   * Why `pending` cannot follow `current` (the AWSCURRENT value now), or undefined when it
   * can. A pending value made from an AWSCURRENT that has since been replaced (by hand, by a
   * deployment) would undo that change: for signing keys, drop the key that signs now.
   */
  follows(pending: string, current: string, context: RotationContext): string | undefined;
}
