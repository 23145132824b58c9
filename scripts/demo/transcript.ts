/** Where the demo writes: a stream in a terminal, a collector in the test. */
export interface Out {
  write(text: string): void;
}

const SLOW_MS = 2000;

export interface StepResult {
  readonly name: string;
  readonly ok: boolean;
  readonly ms: number;
  readonly error?: string;
}

/**
 * The readable record of the demo: one block per step, each side's lines tagged with where
 * they happened, a latency per step, and a progress line while a wait is slow.
 */
export class Transcript {
  readonly results: StepResult[] = [];
  private stepStart = 0;

  constructor(private readonly out: Out) {}

  line(text: string): void {
    this.out.write(text + "\n");
  }

  /** Something a Matrix user did or saw. */
  matrix(text: string): void {
    this.line(`  [matrix]   ${text}`);
  }

  /** Something a simulated WhatsApp user did or saw. */
  whatsapp(text: string): void {
    this.line(`  [whatsapp] ${text}`);
  }

  /** An arrival on the other side, with the time since the step began. */
  arrived(side: "matrix" | "whatsapp", text: string): void {
    const ms = Date.now() - this.stepStart;
    this[side](`${text} (+${ms} ms)`);
  }

  /** Runs one step; a failure is recorded and printed, never thrown, so the script goes on. */
  async step(name: string, run: () => Promise<void>): Promise<void> {
    const index = this.results.length + 1;
    this.line(`\n== step ${index}: ${name}`);
    this.stepStart = Date.now();
    try {
      await run();
      const ms = Date.now() - this.stepStart;
      this.results.push({ name, ok: true, ms });
      this.line(`  ok: ${name} (${ms} ms)`);
    } catch (err) {
      const ms = Date.now() - this.stepStart;
      const error = err instanceof Error ? err.message : String(err);
      this.results.push({ name, ok: false, ms, error });
      this.line(`  FAILED: ${name}: ${error} (${ms} ms)`);
    }
  }

  /**
   * Polls `check` until it gives a value; prints a progress line every couple of seconds so a slow
   * wait is visible, and gives up after `timeoutMs`.
   */
  async waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000) {
    const start = Date.now();
    let nextProgress = start + SLOW_MS;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      const now = Date.now();
      if (now - start > timeoutMs) {
        throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}`);
      }
      if (now >= nextProgress) {
        this.line(`  ... still waiting for ${what} (${Math.round((now - start) / 1000)} s)`);
        nextProgress = now + SLOW_MS;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  summary(): boolean {
    const failed = this.results.filter((r) => !r.ok);
    this.line("\n== summary");
    for (const r of this.results) {
      this.line(`  ${r.ok ? "ok    " : "FAILED"} ${r.name} (${r.ms} ms)`);
    }
    this.line(
      `  ${this.results.length - failed.length}/${this.results.length} steps passed` +
        (failed.length === 0 ? "" : `; failed: ${failed.map((r) => r.name).join(", ")}`),
    );
    return failed.length === 0;
  }
}
