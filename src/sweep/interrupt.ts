/**
 * Ctrl-C for a sweep: the first SIGINT (or SIGTERM) asks the launcher to stop cleanly (no new
 * runs; running ones checkpoint and exit), a second one asks it to stop at once. The handlers
 * replace Node's default (exit) only while the sweep runs.
 */
export class Interrupt {
  count = 0;
  private listeners: Array<(count: number) => void> = [];
  private readonly handler = (): void => {
    this.count++;
    for (const l of this.listeners) l(this.count);
  };

  get requested(): boolean {
    return this.count > 0;
  }

  /** Calls `fn` on every Ctrl-C from now on; returns the function that stops that. */
  onInterrupt(fn: (count: number) => void): () => void {
    this.listeners.push(fn);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
    };
  }

  /** Simulates a Ctrl-C (tests, and a launcher that must stop on its own). */
  trigger(): void {
    this.handler();
  }

  install(): void {
    process.on('SIGINT', this.handler);
    process.on('SIGTERM', this.handler);
  }

  uninstall(): void {
    process.off('SIGINT', this.handler);
    process.off('SIGTERM', this.handler);
  }
}
