import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';
import { failureLine, Launcher, LauncherContext, TaskOutcome, taskFileStem } from './launcher';
import { formatCommand, PrepStep, shellQuote, SweepTask } from './plan';

/**
 * `--launcher slurm`: the runs go to Slurm as one job array (array index = grid index), submitted
 * with sbatch and followed with squeue. Each task runs under a small job script that records the
 * exit code of its `ssl train` in `<state>/slurm/exit/<index>`; that file, not `sacct` (which needs
 * an accounting database many clusters' users cannot query), says whether a task succeeded. A task
 * that failed, or left the queue without an exit code (pre-empted, timed out, node lost), is
 * resubmitted in a new array and resumes from its checkpoints, until it has been retried
 * `maxRetries` times. Slurm's own requeue is off (`--no-requeue`) so that a task never runs twice
 * at once. Missing splits are made first by one job running the prep commands in order.
 *
 * Test hook: with SSL_SWEEP_FAIL_ONCE=<i,j,...> in the environment of `ssl sweep` (sbatch passes
 * it on), the job script fails array tasks i, j, ... once, before running them.
 */
export interface SlurmOptions {
  partition?: string;
  time?: string;
  /** GPUs per array task: `--gres=gpu:<n>`. */
  gpusPerTask?: number;
  /** Extra `#SBATCH` options, e.g. `--mem=16G`. */
  sbatchLines: string[];
  /** At most this many tasks run at once (`--array=...%N`). */
  throttle?: number;
  maxRetries: number;
  pollSeconds: number;
}

const ACTIVE = new Set(['PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'SUSPENDED', 'RESIZING', 'SIGNALING', 'STAGE_OUT', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'SPECIAL_EXIT', 'STOPPED', 'RESV_DEL_HOLD']);
/** Slurm's final states that mean "it reported nothing because it was stopped". */
const STOPPED = new Set(['CANCELLED', 'TIMEOUT', 'PREEMPTED', 'NODE_FAIL', 'BOOT_FAIL', 'DEADLINE', 'OUT_OF_MEMORY', 'REVOKED']);

/** The directories of PATH holding an executable `name`, for the one-line "not found" errors. */
export function onPath(name: string, env: NodeJS.ProcessEnv): boolean {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return true;
    } catch {
      /* not here */
    }
  }
  return false;
}

export function requireSlurmTools(env: NodeJS.ProcessEnv): void {
  for (const tool of ['sbatch', 'squeue', 'scancel']) {
    if (!onPath(tool, env)) throw new UserError(`--launcher slurm needs ${tool}, which is not on PATH; run ssl sweep on a Slurm login node, or use --launcher local`);
  }
}

/** `0-3,5,7-9`: Slurm's --array syntax for a set of indices. */
export function arraySpec(indices: number[]): string {
  const s = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < s.length; ) {
    let j = i;
    while (j + 1 < s.length && s[j + 1] === s[j] + 1) j++;
    parts.push(i === j ? String(s[i]) : `${s[i]}-${s[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** squeue's `%i|%T` lines: `12_3|RUNNING` (array task), `12|PENDING` (plain job), `12_[4-6%2]|PENDING`. */
export function parseSqueue(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const [id, state] = line.trim().split('|');
    if (!id || !state) continue;
    const st = state.trim().split(/\s+/)[0];
    const m = /^(\d+)_\[([^\]]+)\]$/.exec(id.trim());
    if (m) {
      for (const part of m[2].split('%')[0].split(',')) {
        const [a, b] = part.split('-').map(Number);
        for (let k = a; k <= (b ?? a); k++) out.set(`${m[1]}_${k}`, st);
      }
    } else out.set(id.trim(), st);
  }
  return out;
}

interface Tracked {
  /** Grid index, or -1 for the prep job. */
  index: number;
  jobId: string;
  exitFile: string;
  failures: number;
  goneSince?: number;
}

interface Ended {
  code: number | null;
  reason?: string;
}

export class SlurmLauncher implements Launcher {
  private readonly dir: string;
  private readonly jobName: string;
  private cancelled = false;

  constructor(
    private readonly ctx: LauncherContext,
    private readonly opts: SlurmOptions,
    sweepId: string,
  ) {
    this.dir = path.join(ctx.stateDir, 'slurm');
    this.jobName = `ssl-sweep-${sweepId}`;
  }

  private run(cmd: string, args: string[]): { code: number | null; out: string; err: string } {
    const r = spawnSync(cmd, args, { cwd: this.ctx.cwd, env: this.ctx.env, encoding: 'utf8', timeout: 120_000 });
    if (r.error) return { code: null, out: '', err: r.error.message };
    return { code: r.status, out: r.stdout, err: r.stderr };
  }

  private header(name: string, gpus: boolean, output: string): string[] {
    const o = this.opts;
    const lines = [
      '#!/bin/bash',
      `#SBATCH --job-name=${name}`,
      `#SBATCH --output=${path.join(this.ctx.stateDir, 'logs', output)}`,
      '#SBATCH --open-mode=append',
      `#SBATCH --chdir=${this.ctx.cwd}`,
      '#SBATCH --no-requeue',
      '#SBATCH --ntasks=1',
    ];
    if (o.partition) lines.push(`#SBATCH --partition=${o.partition}`);
    if (o.time) lines.push(`#SBATCH --time=${o.time}`);
    if (gpus && o.gpusPerTask) lines.push(`#SBATCH --gres=gpu:${o.gpusPerTask}`);
    for (const l of o.sbatchLines) lines.push(`#SBATCH ${l}`);
    return lines;
  }

  /** The body shared by the array and the prep job: run a script, forward signals, record the exit code. */
  private body(key: string, script: string): string[] {
    const exitDir = shellQuote(path.join(this.dir, 'exit'));
    const hooks = shellQuote(path.join(this.dir, 'hooks'));
    return [
      'set -u',
      `key=${key}`,
      `exit_dir=${exitDir}`,
      'rm -f "$exit_dir/$key"',
      'echo "== $(date -Is) job ${SLURM_JOB_ID:-?} task $key on $(hostname)"',
      'record() { printf \'%s\\n\' "$1" >"$exit_dir/.$key.tmp" && mv -f "$exit_dir/.$key.tmp" "$exit_dir/$key"; }',
      '# test hook: SSL_SWEEP_FAIL_ONCE=<i,j,...> fails those tasks once, before they run',
      `if [ -n "\${SSL_SWEEP_FAIL_ONCE:-}" ] && [[ ",$SSL_SWEEP_FAIL_ONCE," == *",$key,"* ]] && mkdir -p ${hooks} && mkdir ${hooks}/"failed-once-$key" 2>/dev/null; then`,
      '  echo "SSL_SWEEP_FAIL_ONCE: task $key fails once (test hook)"',
      '  record 1',
      '  exit 1',
      'fi',
      `bash ${script} &`,
      'child=$!',
      // Slurm signals the whole job on scancel, pre-emption and time limits; pass it on in case
      // the child was not reached, and keep waiting: train checkpoints before it exits
      "trap 'kill -TERM $child 2>/dev/null' TERM",
      "trap 'kill -INT $child 2>/dev/null' INT",
      'rc=0',
      'wait "$child" || rc=$?',
      'while kill -0 "$child" 2>/dev/null; do rc=0; wait "$child" || rc=$?; done',
      'record "$rc"',
      'exit "$rc"',
    ];
  }

  private commandScript(argv: string[], logFile: string, label: string): string {
    return [
      '#!/bin/bash',
      `# ${label}`,
      `exec >>${shellQuote(logFile)} 2>&1`,
      `echo "== $(date -Is) job \${SLURM_JOB_ID:-?} on $(hostname): ${formatCommand(argv).replace(/["\\$`]/g, '\\$&')}"`,
      `exec ${this.sslLine(argv)}`,
      '',
    ].join('\n');
  }

  private sslLine(argv: string[]): string {
    return [...this.ctx.ssl, ...argv].map(shellQuote).join(' ');
  }

  private writeArrayScript(tasks: SweepTask[]): string {
    for (const t of tasks) {
      const log = path.join(this.ctx.stateDir, 'logs', `${taskFileStem(t)}.log`);
      writeFileAtomic(path.join(this.dir, 'tasks', `${t.index}.sh`), this.commandScript(t.train.argv, log, t.label));
    }
    const file = path.join(this.dir, 'array.sh');
    const script = [...this.header(this.jobName, true, 'slurm-%A_%a.out'), ...this.body('"$SLURM_ARRAY_TASK_ID"', `${shellQuote(path.join(this.dir, 'tasks'))}/"$key".sh`), ''];
    writeFileAtomic(file, script.join('\n'));
    fs.mkdirSync(path.join(this.dir, 'exit'), { recursive: true });
    fs.mkdirSync(path.join(this.ctx.stateDir, 'logs'), { recursive: true });
    return file;
  }

  private submit(script: string, extra: string[]): string {
    const r = this.run('sbatch', ['--parsable', ...extra, script]);
    const id = /^(\d+)/.exec(r.out.trim());
    if (r.code !== 0 || !id) {
      const why = (r.err || r.out).trim().split('\n').pop() || `exit ${r.code}`;
      throw new UserError(`sbatch refused the sweep's job (${why}); the job script is ${script}`);
    }
    this.recordJob(id[1]);
    return id[1];
  }

  /** Every job this sweep submitted, so a later run of it can tell its own jobs apart. */
  private recordJob(id: string): void {
    const file = path.join(this.dir, 'jobs.txt');
    fs.mkdirSync(this.dir, { recursive: true });
    fs.appendFileSync(file, `${id} ${new Date().toISOString()}\n`);
  }

  /** squeue's view of this sweep's jobs; null when squeue could not answer this time. */
  private queue(): Map<string, string> | null {
    const r = this.run('squeue', ['-h', '-r', '--states=all', `--name=${this.jobName},${this.jobName}-prep`, '-o', '%i|%T']);
    if (r.code !== 0) return null;
    return parseSqueue(r.out);
  }

  private readExit(file: string): number | null {
    try {
      const v = fs.readFileSync(file, 'utf8').trim();
      return /^\d+$/.test(v) ? Number(v) : null;
    } catch {
      return null;
    }
  }

  private sleep(seconds: number): Promise<void> {
    return new Promise((resolve) => {
      const off = this.ctx.interrupt.onInterrupt(() => {
        clearTimeout(t);
        off();
        resolve();
      });
      const t = setTimeout(() => {
        off();
        resolve();
      }, seconds * 1000);
    });
  }

  /** Whether a tracked task has ended, and how; null while it is queued or running. */
  private ended(t: Tracked, states: Map<string, string>, now: number): Ended | null {
    const key = t.index < 0 ? t.jobId : `${t.jobId}_${t.index}`;
    const st = states.get(key);
    if (st && ACTIVE.has(st)) {
      t.goneSince = undefined;
      return null;
    }
    const code = this.readExit(t.exitFile);
    if (code !== null) return { code };
    if (st && STOPPED.has(st)) return { code: null, reason: `Slurm ended it as ${st}` };
    // finished but its exit file not visible yet (a shared file system may lag): give it a moment
    t.goneSince ??= now;
    if (now - t.goneSince < Math.max(10, 3 * this.opts.pollSeconds) * 1000) return null;
    return { code: null, reason: st ? `Slurm reports ${st} but the task wrote no exit code` : 'it left the Slurm queue without writing an exit code' };
  }

  private cancel(jobIds: string[]): void {
    if (jobIds.length === 0 || this.cancelled) return;
    this.cancelled = true;
    this.ctx.log(`Stopping: cancelling Slurm job${jobIds.length > 1 ? 's' : ''} ${jobIds.join(' ')} (runs checkpoint on the way out; re-run the same ssl sweep command to resume)`);
    this.run('scancel', jobIds);
  }

  /**
   * Follows tracked tasks until each has ended; `onEnd` decides whether an ended task is
   * resubmitted (returns true) or final.
   */
  private async follow(tracked: Tracked[], onEnd: (t: Tracked, e: Ended) => boolean, resubmit: (ts: Tracked[]) => void): Promise<void> {
    let live = [...tracked];
    let squeueFailures = 0;
    const off = this.ctx.interrupt.onInterrupt(() => this.cancel([...new Set(live.map((t) => t.jobId))]));
    try {
      while (live.length > 0) {
        if (this.ctx.interrupt.count > 1) return;
        await this.sleep(this.opts.pollSeconds);
        if (this.ctx.interrupt.count > 1) return;
        const states = this.queue();
        if (!states) {
          if (++squeueFailures >= 10) throw new UserError('squeue has failed 10 times in a row; the jobs may still be running: re-run the same ssl sweep command to follow them');
          continue;
        }
        squeueFailures = 0;
        const again: Tracked[] = [];
        const now = Date.now();
        live = live.filter((t) => {
          const e = this.ended(t, states, now);
          if (!e) return true;
          if (onEnd(t, e) && !this.ctx.interrupt.requested) again.push(t);
          return false;
        });
        if (again.length > 0) {
          resubmit(again);
          live.push(...again);
        }
      }
    } finally {
      off();
    }
  }

  async runPrep(steps: PrepStep[]): Promise<void> {
    const ordered = [...steps.filter((s) => !s.after), ...steps.filter((s) => s.after)];
    const log = path.join(this.ctx.stateDir, 'logs', 'prep.log');
    const prepDir = path.join(this.dir, 'prep');
    writeFileAtomic(
      path.join(prepDir, 'steps.sh'),
      ['#!/bin/bash', 'set -e', `exec >>${shellQuote(log)} 2>&1`, ...ordered.flatMap((s) => [`echo "== $(date -Is) ${formatCommand(s.argv).replace(/["\\$`]/g, '\\$&')}"`, this.sslLine(s.argv)]), ''].join('\n'),
    );
    const script = path.join(prepDir, 'prep.sh');
    writeFileAtomic(script, [...this.header(`${this.jobName}-prep`, false, 'slurm-%j.out'), ...this.body('prep', shellQuote(path.join(prepDir, 'steps.sh'))), ''].join('\n'));
    fs.mkdirSync(path.join(this.dir, 'exit'), { recursive: true });
    fs.mkdirSync(path.dirname(log), { recursive: true });
    const exitFile = path.join(this.dir, 'exit', 'prep');
    fs.rmSync(exitFile, { force: true });
    const jobId = this.submit(script, []);
    this.ctx.log(`Submitted job ${jobId}: making ${ordered.length} split${ordered.length > 1 ? 's' : ''} (${ordered.map((s) => s.split).join(', ')}); log ${log}`);
    let result: Ended | null = null;
    await this.follow([{ index: -1, jobId, exitFile, failures: 0 }], (_t, e) => {
      result = e;
      return false;
    }, () => undefined);
    const r = result as Ended | null;
    if (this.ctx.interrupt.requested && r?.code !== 0) throw new UserError('interrupted while making splits; no run had started; re-run the same ssl sweep command to continue');
    if (!r || r.code !== 0) throw new UserError(`making the splits failed (${r?.reason ?? failureLine(log)}; log: ${log}); no run was started`);
  }

  async runTasks(tasks: SweepTask[]): Promise<TaskOutcome[]> {
    const byIndex = new Map(tasks.map((t) => [t.index, t]));
    const exitFile = (i: number) => path.join(this.dir, 'exit', String(i));
    const logOf = (t: SweepTask) => path.join(this.ctx.stateDir, 'logs', `${taskFileStem(t)}.log`);
    const script = this.writeArrayScript(tasks);
    const tracked: Tracked[] = [];

    // tasks of this sweep still in Slurm from an earlier `ssl sweep` (killed, or its terminal closed): follow, don't duplicate
    const states = this.queue() ?? new Map<string, string>();
    const adopted = new Set<number>();
    for (const [key, st] of states) {
      const m = /^(\d+)_(\d+)$/.exec(key);
      if (!m || !ACTIVE.has(st) || !byIndex.has(Number(m[2])) || adopted.has(Number(m[2]))) continue;
      adopted.add(Number(m[2]));
      tracked.push({ index: Number(m[2]), jobId: m[1], exitFile: exitFile(Number(m[2])), failures: 0 });
    }
    if (adopted.size > 0) this.ctx.log(`Following ${adopted.size} task${adopted.size > 1 ? 's' : ''} already in Slurm from an earlier ssl sweep: ${arraySpec([...adopted])}`);

    const submitArray = (indices: number[], why: string) => {
      for (const i of indices) fs.rmSync(exitFile(i), { force: true });
      const spec = arraySpec(indices) + (this.opts.throttle ? `%${this.opts.throttle}` : '');
      const jobId = this.submit(script, [`--array=${spec}`]);
      this.ctx.log(`Submitted job ${jobId}: ${why} array ${arraySpec(indices)} (${indices.length} run${indices.length > 1 ? 's' : ''})${this.opts.partition ? ` to partition ${this.opts.partition}` : ''}`);
      return jobId;
    };
    const fresh = tasks.map((t) => t.index).filter((i) => !adopted.has(i));
    if (fresh.length > 0) {
      const jobId = submitArray(fresh, 'the sweep as');
      for (const i of fresh) tracked.push({ index: i, jobId, exitFile: exitFile(i), failures: 0 });
    }

    // the task's own log, or Slurm's output for it when the task never got to write one
    const whyFailed = (t: Tracked): string => {
      const task = byIndex.get(t.index) as SweepTask;
      const own = logOf(task);
      const slurmOut = path.join(this.ctx.stateDir, 'logs', `slurm-${t.jobId}_${t.index}.out`);
      return failureLine(fs.existsSync(own) || !fs.existsSync(slurmOut) ? own : slurmOut);
    };
    const outcomes: TaskOutcome[] = [];
    const finish = (t: Tracked, status: TaskOutcome['status'], e: Ended) => {
      const task = byIndex.get(t.index) as SweepTask;
      const o: TaskOutcome = { task, status, code: e.code, log: logOf(task), attempts: t.failures + (status === 'done' ? 1 : 0) };
      if (status !== 'done') o.reason = e.reason ?? whyFailed(t);
      outcomes.push(o);
      this.ctx.onTaskEnd?.(o);
    };
    await this.follow(
      tracked,
      (t, e) => {
        if (e.code === 0) {
          finish(t, 'done', e);
          return false;
        }
        t.failures++;
        if (this.ctx.interrupt.requested) {
          finish(t, 'interrupted', e);
          return false;
        }
        const task = byIndex.get(t.index) as SweepTask;
        const why = e.reason ?? (e.code !== null ? `exit ${e.code}: ${whyFailed(t)}` : 'no exit code');
        if (t.failures > this.opts.maxRetries) {
          finish(t, 'failed', { ...e, reason: `${why} (failed ${t.failures} times)` });
          return false;
        }
        this.ctx.log(`Task ${t.index} (${task.label}) failed (${why}); resubmitting, retry ${t.failures} of ${this.opts.maxRetries}`);
        return true;
      },
      (again) => {
        const jobId = submitArray(again.map((t) => t.index), 'retrying');
        for (const t of again) t.jobId = jobId;
      },
    );
    // a second Ctrl-C stops following: whatever has not ended is still stopping in Slurm
    const ended = new Set(outcomes.map((o) => o.task.index));
    for (const t of tracked) {
      if (ended.has(t.index)) continue;
      const task = byIndex.get(t.index) as SweepTask;
      outcomes.push({ task, status: 'interrupted', log: logOf(task), attempts: t.failures, reason: `still stopping in Slurm job ${t.jobId}` });
    }
    return outcomes;
  }
}
