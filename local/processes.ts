/**
 * Clean-up of the local gateway. Its child processes are started with dev/processes.ts,
 * the helpers the tests use too.
 */
/** Runs clean-up steps in reverse order of registration; every step runs even if one fails. */
export class CleanupStack {
  private readonly steps: Array<{ what: string; run: () => Promise<void> | void }> = [];
  private running: Promise<void> | undefined;

  add(what: string, run: () => Promise<void> | void): void {
    this.steps.push({ what, run });
  }

  /** Idempotent: a second call waits for the first. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      const failures: string[] = [];
      while (this.steps.length > 0) {
        const step = this.steps.pop()!;
        try {
          await step.run();
        } catch (error) {
          failures.push(`${step.what}: ${(error as Error).message}`);
        }
      }
      if (failures.length > 0) throw new Error(`Stopping the local gateway left problems:\n${failures.join('\n')}`);
    })();
    return this.running;
  }
}
