import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { failureLine, Launcher, LauncherContext, TaskOutcome, taskFileStem } from './launcher';
import { formatCommand, PrepStep, SweepTask } from './plan';

/**
 * `--launcher local`: up to `jobs` ssl processes at once on this machine, each writing to its own
 * log under `<state>/logs/`. With `gpus`, each concurrent run owns one device through
 * CUDA_VISIBLE_DEVICES. Ctrl-C reaches every child (train checkpoints and exits); a second Ctrl-C
 * kills them, which still leaves each run resumable from its last periodic checkpoint.
 */
export interface LocalOptions {
  jobs: number;
  gpus?: string[];
}

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class LocalLauncher implements Launcher {
  private readonly running = new Set<ChildProcess>();
  private readonly logDir: string;

  constructor(
    private readonly ctx: LauncherContext,
    private readonly opts: LocalOptions,
  ) {
    this.logDir = path.join(ctx.stateDir, 'logs');
    ctx.interrupt.onInterrupt((count) => {
      for (const child of this.running) child.kill(count > 1 ? 'SIGKILL' : 'SIGINT');
    });
  }

  private start(argv: string[], logFile: string, env: NodeJS.ProcessEnv): Promise<Finished> {
    fs.mkdirSync(path.dirname(logFile), { recursive: true });
    const fd = fs.openSync(logFile, 'a');
    fs.writeSync(fd, `== ${new Date().toISOString()} ${formatCommand(argv)}${env.CUDA_VISIBLE_DEVICES !== undefined ? ` (CUDA_VISIBLE_DEVICES=${env.CUDA_VISIBLE_DEVICES})` : ''}\n`);
    const child = spawn(this.ctx.ssl[0], [...this.ctx.ssl.slice(1), ...argv], { cwd: this.ctx.cwd, env, stdio: ['ignore', fd, fd] });
    fs.closeSync(fd);
    this.running.add(child);
    return new Promise((resolve) => {
      let settled = false;
      const done = (f: Finished) => {
        if (settled) return;
        settled = true;
        this.running.delete(child);
        resolve(f);
      };
      child.on('error', (e) => {
        fs.appendFileSync(logFile, `ssl: cannot start ${this.ctx.ssl[0]}: ${e.message}\n`);
        done({ code: 127, signal: null });
      });
      child.on('exit', (code, signal) => done({ code, signal }));
    });
  }

  /** Runs items, `jobs` at a time, each on a free slot; stops taking new ones after Ctrl-C. */
  private async pool<T>(items: T[], run: (item: T, slot: number) => Promise<void>): Promise<void> {
    const queue = [...items];
    const slots = Array.from({ length: Math.max(1, this.opts.jobs) }, (_, i) => i);
    await Promise.all(
      slots.map(async (slot) => {
        while (queue.length > 0 && !this.ctx.interrupt.requested) {
          const item = queue.shift() as T;
          await run(item, slot);
        }
      }),
    );
  }

  async runPrep(steps: PrepStep[]): Promise<void> {
    const failures: string[] = [];
    const done = new Set<string>();
    // splits first, then the copies made from them
    for (const wave of [steps.filter((s) => !s.after), steps.filter((s) => s.after)]) {
      await this.pool(wave, async (step) => {
        if (step.after && !done.has(step.after)) return;
        const logFile = path.join(this.logDir, `prep-${step.kind}-${step.split}.log`);
        this.ctx.log(`Making ${step.split}: ${formatCommand(step.argv)}`);
        const f = await this.start(step.argv, logFile, this.ctx.env);
        if (f.code === 0) done.add(step.split);
        else if (!this.ctx.interrupt.requested) failures.push(`\`${formatCommand(step.argv)}\` failed (${failureLine(logFile)}; log: ${logFile})`);
      });
      if (failures.length > 0 || this.ctx.interrupt.requested) break;
    }
    if (this.ctx.interrupt.requested) throw new UserError('interrupted while making splits; no run had started; re-run the same ssl sweep command to continue');
    if (failures.length > 0) throw new UserError(`${failures[0]}${failures.length > 1 ? ` (and ${failures.length - 1} more)` : ''}; no run was started`);
  }

  async runTasks(tasks: SweepTask[]): Promise<TaskOutcome[]> {
    const outcomes: TaskOutcome[] = [];
    await this.pool(tasks, async (task, slot) => {
      const env: NodeJS.ProcessEnv = { ...this.ctx.env };
      if (this.opts.gpus) env.CUDA_VISIBLE_DEVICES = this.opts.gpus[slot];
      const logFile = path.join(this.logDir, `${taskFileStem(task)}.log`);
      const f = await this.start(task.train.argv, logFile, env);
      const status = f.code === 0 ? 'done' : this.ctx.interrupt.requested ? 'interrupted' : 'failed';
      const outcome: TaskOutcome = { task, status, code: f.code, log: logFile, attempts: 1 };
      if (status === 'failed') outcome.reason = f.signal ? `killed by ${f.signal}` : failureLine(logFile);
      outcomes.push(outcome);
      this.ctx.onTaskEnd?.(outcome);
    });
    return outcomes;
  }
}
