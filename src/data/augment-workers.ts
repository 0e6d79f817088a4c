import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { UserError } from '../errors';

/**
 * A small pool of worker threads for the augmentation work (aug-copy's decode/augment/encode,
 * training's batch augmentation). Tasks go to the least busy worker; each task's promise resolves
 * with that task's reply, so callers keep their own order and results never depend on which
 * worker ran what.
 *
 * Workers run compiled JavaScript: a worker cannot load TypeScript. `workerScript` finds the entry
 * beside the calling module when that module is itself compiled (dist/), and gives null when it is
 * not (ts-jest, ts-node): callers then do the same work in-thread.
 */

/** The compiled worker entry `<name>.js` beside `moduleFile`, or null when there is none to run. */
export function workerScript(moduleFile: string, name: string): string | null {
  if (path.extname(moduleFile) !== '.js') return null;
  const file = path.join(path.dirname(moduleFile), `${name}.js`);
  return fs.existsSync(file) ? file : null;
}

/** Worker threads worth starting by default: one per core the process may use. */
export function defaultWorkerCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

interface Slot {
  worker: Worker;
  busy: number;
  pending: Map<number, Pending>;
}

export class WorkerPool<Req, Res> {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private failure: Error | null = null;
  private closed = false;

  constructor(script: string, count: number, workerData?: unknown) {
    for (let i = 0; i < count; i++) {
      const worker = new Worker(script, { workerData });
      const slot: Slot = { worker, busy: 0, pending: new Map() };
      worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string; user?: boolean }) => {
        const p = slot.pending.get(m.id);
        if (!p) return;
        slot.pending.delete(m.id);
        // a reply that lands while close() terminates the worker must not unref it: the process
        // could then end inside close(), skipping what the caller does next (a run's lock release)
        if (--slot.busy === 0 && !this.closed) worker.unref();
        if (m.ok) p.resolve(m.value);
        else p.reject(remoteError(m.error ?? 'worker failed', m.user === true));
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`augmentation worker exited with code ${code}`));
      });
      // an idle pool must not keep the process alive; a busy one must (see run)
      worker.unref();
      this.slots.push(slot);
    }
  }

  get size(): number {
    return this.slots.length;
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const s of this.slots) {
      for (const p of s.pending.values()) p.reject(e);
      s.pending.clear();
      s.busy = 0;
      s.worker.unref();
    }
  }

  run(task: Req, transfer: ArrayBuffer[] = []): Promise<Res> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new Error('worker pool is closed'));
    let slot = this.slots[0];
    for (const s of this.slots) if (s.busy < slot.busy) slot = s;
    const id = this.nextId++;
    return new Promise<Res>((resolve, reject) => {
      slot.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      if (slot.busy++ === 0) slot.worker.ref();
      slot.worker.postMessage({ id, task }, transfer);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/** Errors cross the thread boundary as text; a UserError stays a UserError. */
function remoteError(message: string, user: boolean): Error {
  return user ? new UserError(message) : new Error(message);
}

/** The worker side: answers each `{id, task}` with `handler(task)`, transferring what it names. */
export function serveTasks<Req, Res>(
  port: { on(ev: 'message', cb: (m: { id: number; task: Req }) => void): void; postMessage(v: unknown, transfer?: ArrayBuffer[]): void },
  handler: (task: Req) => Promise<{ value: Res; transfer?: ArrayBuffer[] }> | { value: Res; transfer?: ArrayBuffer[] },
): void {
  port.on('message', async ({ id, task }) => {
    try {
      const { value, transfer } = await handler(task);
      port.postMessage({ id, ok: true, value }, transfer ?? []);
    } catch (e) {
      const err = e as Error;
      port.postMessage({ id, ok: false, error: err.message, user: err.name === 'UserError' });
    }
  });
}
