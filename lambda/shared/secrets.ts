/**
 * Secret reading: a small source interface (Secrets Manager in Lambda, a JSON file or a
 * map locally) and a per-container cache with a bounded re-read for unknown key ids.
 */
import { readFile } from 'node:fs/promises';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** A secret could not be read or parsed; the message names the secret and the cause, never the value. */
export class SecretReadError extends Error {
  constructor(
    readonly secretId: string,
    cause: unknown,
  ) {
    super(`Reading secret ${secretId} failed: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'SecretReadError';
  }
}

export interface SecretSource {
  /** The SecretString of the secret's AWSCURRENT version. */
  getSecretString(secretId: string): Promise<string>;
}

export class SecretsManagerSource implements SecretSource {
  constructor(private readonly client: SecretsManagerClient = new SecretsManagerClient({})) {}

  async getSecretString(secretId: string): Promise<string> {
    const answer = await this.client.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: 'AWSCURRENT' }));
    if (typeof answer.SecretString !== 'string') throw new Error(`Secret ${secretId} has no SecretString (binary secrets are not supported).`);
    return answer.SecretString;
  }
}

/** Secrets from an in-memory map (tests, embedding). Objects are stored as their JSON. */
export class StaticSecretSource implements SecretSource {
  private readonly values = new Map<string, string>();

  constructor(values: Record<string, unknown> = {}) {
    for (const [id, value] of Object.entries(values)) this.set(id, value);
  }

  set(secretId: string, value: unknown): void {
    this.values.set(secretId, typeof value === 'string' ? value : JSON.stringify(value));
  }

  async getSecretString(secretId: string): Promise<string> {
    const value = this.values.get(secretId);
    if (value === undefined) throw new Error(`Secret ${secretId} does not exist in the local secret map.`);
    return value;
  }
}

/**
 * Secrets from a local JSON file `{ "<secret id>": <string or JSON value>, ... }`, read on
 * every call so that editing the file "rotates" a secret for a local run.
 */
export class JsonFileSecretSource implements SecretSource {
  constructor(private readonly file: string) {}

  async getSecretString(secretId: string): Promise<string> {
    let all: Record<string, unknown>;
    try {
      all = JSON.parse(await readFile(this.file, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      // JSON.parse messages quote the input, which holds secrets: report the kind of failure only.
      throw new Error(`The local secrets file ${this.file} cannot be read as JSON (${(error as NodeJS.ErrnoException).code ?? 'syntax error'}).`);
    }
    if (!(secretId in all)) throw new Error(`Secret ${secretId} is not in ${this.file}: add it as a key of that JSON object.`);
    const value = all[secretId];
    return typeof value === 'string' ? value : JSON.stringify(value);
  }
}

/** A value that is not usable yet (a key set still at its seed) and how long to wait for a usable one. */
export interface ReadinessOptions {
  /** True when the value can be used (a key set with a current key). */
  readonly isReady: (parsed: unknown) => boolean;
  /** How long one read waits for a usable value before it gives up with what it has. */
  readonly maxWaitMs: number;
  /** How often it reads again while it waits. */
  readonly pollMs: number;
  /** Where the wait is reported: one line when it starts and one when it ends. Never the value. */
  readonly report: (level: 'info' | 'warn', message: string, fields: Record<string, unknown>) => void;
}

export interface CachedSecretOptions {
  /** A value older than this is read again on the next use. */
  readonly maxAgeMs: number;
  /** Smallest interval between two re-reads triggered by unknown key ids. */
  readonly rereadIntervalMs: number;
  readonly now?: () => number;
  /**
   * With it, a value that is not ready is never kept for `maxAgeMs`: `get()` reads again
   * every `pollMs` until it is ready or `maxWaitMs` passed (the first rotation runs after
   * the deployment started everything: RotateSecret only starts it).
   */
  readonly readiness?: ReadinessOptions;
  /** Waits `ms` (tests make it instant). @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * One secret, parsed, cached per container. Concurrent callers share one read. A read
 * that fails is not cached, so the next request tries again. A value that is not ready
 * (see `readiness`) is waited for, bounded, and not cached.
 */
export class CachedSecret<T> {
  private value?: { parsed: T; readAt: number };
  private pending?: Promise<T>;
  private waiting?: Promise<T>;
  private lastForcedRead = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(
    private readonly source: SecretSource,
    readonly secretId: string,
    private readonly parse: (secretString: string) => T,
    private readonly options: CachedSecretOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async get(): Promise<T> {
    if (this.value && this.now() - this.value.readAt < this.options.maxAgeMs && this.isReady(this.value.parsed)) return this.value.parsed;
    if (!this.options.readiness) return this.read();
    this.waiting ??= this.readUntilReady(this.options.readiness).finally(() => {
      this.waiting = undefined;
    });
    return this.waiting;
  }

  private isReady(parsed: T): boolean {
    return this.options.readiness?.isReady(parsed) ?? true;
  }

  private async readUntilReady(readiness: ReadinessOptions): Promise<T> {
    const sleep = this.options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
    let parsed = await this.read();
    if (readiness.isReady(parsed)) return parsed;
    readiness.report('info', `Secret ${this.secretId} holds no keys yet (its first rotation has not finished): waiting up to ${readiness.maxWaitMs} ms.`, { secretId: this.secretId });
    // Counted, not timed: the wait ends after maxWaitMs of sleeping whatever the clock does.
    let waitedMs = 0;
    while (waitedMs < readiness.maxWaitMs) {
      const step = Math.min(readiness.pollMs, readiness.maxWaitMs - waitedMs);
      await sleep(step);
      waitedMs += step;
      parsed = await this.read();
      if (readiness.isReady(parsed)) {
        readiness.report('info', `Secret ${this.secretId} has its first keys after waiting ${waitedMs} ms.`, { secretId: this.secretId, waitedMs });
        return parsed;
      }
    }
    readiness.report('warn', `Secret ${this.secretId} still holds no keys after waiting ${waitedMs} ms: answering that the keys are not ready.`, { secretId: this.secretId, waitedMs });
    return parsed;
  }

  /**
   * Called when a key id is not in the cached value: reads the secret again unless a
   * forced read happened within the re-read interval. Returns the (possibly new) value.
   */
  async rereadForUnknownKey(): Promise<T> {
    if (this.now() - this.lastForcedRead < this.options.rereadIntervalMs) return this.get();
    this.lastForcedRead = this.now();
    return this.read();
  }

  private read(): Promise<T> {
    this.pending ??= (async () => {
      try {
        const parsed = this.parse(await this.source.getSecretString(this.secretId));
        this.value = { parsed, readAt: this.now() };
        return parsed;
      } catch (error) {
        throw new SecretReadError(this.secretId, error);
      } finally {
        this.pending = undefined;
      }
    })();
    return this.pending;
  }
}
