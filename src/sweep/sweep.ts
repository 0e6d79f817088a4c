import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { extractAccuracy } from '../train/extract-accuracy';
import { createProgress } from '../util/progress';
import { AXES, GridAxes } from './grid';
import { Interrupt } from './interrupt';
import type { Launcher, LauncherContext, TaskOutcome } from './launcher';
import { LocalLauncher } from './local';
import { acquireLock } from './lock';
import { formatCommand, planSweep, SweepPlan, SweepTask } from './plan';
import { checkOwnership, clearDatasetFacts, readMarker, RunProgress, runDirOf, runProgress, writeMarker } from './runs';
import { requireSlurmTools, SlurmLauncher, SlurmOptions } from './slurm';

export interface SweepOptions {
  /** The ssl command with placeholders: ['train', '--dataset', 'cifar10.{seed}@{size}-5000', ...]. */
  template: string[];
  axes: GridAxes;
  launcher: 'local' | 'slurm';
  /** Local: runs at once (default: one per --gpus device, else 1). Slurm: array throttle. */
  jobs?: number;
  gpus?: string[];
  dryRun: boolean;
  copyAugment?: string;
  slurm: Omit<SlurmOptions, 'throttle'>;
  /** How to start ssl itself: [node, the ssl entry script]. */
  ssl: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
  /** Supplied by tests; otherwise SIGINT/SIGTERM handlers are installed for the sweep's duration. */
  interrupt?: Interrupt;
}

export interface SweepResult {
  plan: SweepPlan;
  /** Runs already finished before this sweep started. */
  skipped: SweepTask[];
  outcomes: TaskOutcome[];
  /** Dry run: the commands, one per line. */
  commands?: string[];
}

function describeGrid(axes: GridAxes): string {
  const parts = AXES.filter((a) => axes[a.name] !== undefined).map((a) => `${a.name} ${(axes[a.name] as number[]).join(',')}`);
  return parts.length ? parts.join(' x ') : 'one point';
}

function kimg(images: number): string {
  return String(Math.floor(images / 1024));
}

/**
 * `ssl sweep`: expands the grid, makes missing splits once, skips finished runs, resumes partial
 * ones and starts the rest through a launcher. Every check that can fail on the user's input
 * (grid, command, ownership of existing run directories, launcher tools) runs before anything
 * starts.
 */
export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const cwd = o.cwd ?? process.cwd();
  const env = o.env ?? process.env;
  if (o.launcher === 'slurm' && !o.dryRun) requireSlurmTools(env);
  const plan = planSweep(o.template, o.axes, { copyAugment: o.copyAugment, cwd, strict: !o.dryRun });

  if (o.dryRun) {
    const commands = [...plan.prep.map((s) => formatCommand(s.argv)), ...plan.tasks.map((t) => formatCommand(t.train.argv))];
    for (const c of commands) log(c);
    return { plan, skipped: [], outcomes: [], commands };
  }
  const jobs = o.jobs ?? (o.gpus ? o.gpus.length : 1);
  if (o.launcher === 'local' && o.gpus && jobs > o.gpus.length) {
    throw new UserError(`--jobs ${jobs} needs ${jobs} devices but --gpus names ${o.gpus.length}; each concurrent run gets its own GPU`);
  }

  // run directories that exist already (their splits exist): refuse another sweep's before anything starts
  const runDirs = new Map<number, string>();
  for (const t of plan.tasks) {
    const dir = await runDirOf(t.train);
    if (dir === null) continue;
    runDirs.set(t.index, dir);
    if (fs.existsSync(dir)) checkOwnership(dir, t.train.identity);
  }
  checkDistinct(plan.tasks, runDirs);

  const release = acquireLock(plan.stateDir);
  const interrupt = o.interrupt ?? new Interrupt();
  if (!o.interrupt) interrupt.install();
  try {
    const progressOf = new Map<number, RunProgress>();
    for (const t of plan.tasks) {
      const dir = runDirs.get(t.index);
      progressOf.set(t.index, dir ? runProgress(dir, t.train.cfg.trainKimg) : { kind: 'new' });
    }
    const count = (k: RunProgress['kind']) => [...progressOf.values()].filter((p) => p.kind === k).length;
    log(`Sweep ${plan.id}: ${plan.tasks.length} run${plan.tasks.length > 1 ? 's' : ''} (${describeGrid(o.axes)}) of \`${formatCommand(o.template)}\``);
    log(`  ${count('finished')} finished, ${count('partial')} to resume, ${count('new')} to start${plan.prep.length ? `; ${plan.prep.length} split${plan.prep.length > 1 ? 's' : ''} to make first` : ''}`);
    log(`  launcher ${o.launcher}${o.launcher === 'local' ? `: ${jobs} at a time${o.gpus ? ` on GPUs ${o.gpus.join(',')}` : ''}` : o.jobs ? `: at most ${o.jobs} at a time` : ''}; logs in ${path.join(plan.stateDir, 'logs')}`);

    // nothing to show a bar for when every run has finished already
    const progress = count('finished') < plan.tasks.length ? createProgress('Sweep runs', plan.tasks.length) : { update: () => undefined, log: (l: string) => log(l), stop: () => undefined };
    // above a live bar when both streams are the terminal; otherwise results stay on stdout
    const viaBar = Boolean(process.stderr.isTTY && process.stdout.isTTY);
    const say = (l: string) => (viaBar ? progress.log(l) : log(l));
    let ended = count('finished');
    progress.update(ended);
    const ctx: LauncherContext = {
      ssl: o.ssl,
      cwd,
      env,
      stateDir: plan.stateDir,
      log: say,
      interrupt,
      onTaskEnd: (out) => {
        progress.update(++ended);
        say(describeOutcome(out, runDirs.get(out.task.index)));
      },
    };
    const launcher: Launcher =
      o.launcher === 'slurm' ? new SlurmLauncher(ctx, { ...o.slurm, throttle: o.jobs }, plan.id) : new LocalLauncher(ctx, { jobs, gpus: o.gpus });

    let outcomes: TaskOutcome[] = [];
    const skipped = plan.tasks.filter((t) => progressOf.get(t.index)?.kind === 'finished');
    try {
      if (plan.prep.length > 0) {
        await launcher.runPrep(plan.prep);
        clearDatasetFacts();
      }
      const pending: SweepTask[] = [];
      for (const t of plan.tasks) {
        if (progressOf.get(t.index)?.kind === 'finished') continue;
        const dir = runDirs.get(t.index) ?? (await runDirOf(t.train));
        if (dir === null) throw new UserError(`the files of dataset ${t.train.dataset} are still missing after making the splits (data root ${t.train.dataRoot})`);
        runDirs.set(t.index, dir);
        if (fs.existsSync(dir)) {
          checkOwnership(dir, t.train.identity);
          const p = runProgress(dir, t.train.cfg.trainKimg);
          if (p.kind === 'finished') {
            skipped.push(t);
            progress.update(++ended);
            continue;
          }
        }
        pending.push(t);
      }
      checkDistinct(plan.tasks, runDirs);
      for (const t of pending) {
        const dir = runDirs.get(t.index) as string;
        if (!readMarker(dir)) writeMarker(dir, { sweep: plan.id, command: formatCommand(t.train.argv), identity: t.train.identity });
        const p = progressOf.get(t.index);
        if (p?.kind === 'partial') say(`Resuming ${t.label} from ${kimg(p.imagesSeen)} of ${t.train.cfg.trainKimg} kimg`);
      }
      if (pending.length > 0 && !interrupt.requested) outcomes = await launcher.runTasks(pending);
    } finally {
      progress.stop();
    }

    const failed = outcomes.filter((x) => x.status === 'failed');
    const stopped = outcomes.filter((x) => x.status === 'interrupted');
    const done = outcomes.filter((x) => x.status === 'done');
    log(`Sweep ${plan.id}: ${done.length + skipped.length} of ${plan.tasks.length} finished (${skipped.length} already were), ${failed.length} failed, ${stopped.length} stopped`);
    if (interrupt.requested) {
      throw new UserError(`interrupted: ${stopped.length} run${stopped.length === 1 ? '' : 's'} stopped at a checkpoint; re-run the same ssl sweep command to resume`);
    }
    if (failed.length > 0) {
      const first = failed[0];
      throw new UserError(`${failed.length} of ${plan.tasks.length} runs failed; first: ${first.task.label} (${first.reason}; log ${first.log}); fix it and re-run the same ssl sweep command to resume`);
    }
    return { plan, skipped, outcomes };
  } finally {
    if (!o.interrupt) interrupt.uninstall();
    release();
  }
}

/** Settings the run name does not hold (report_kimg, train_kimg) cannot tell two runs' directories apart. */
function checkDistinct(tasks: SweepTask[], runDirs: Map<number, string>): void {
  const owner = new Map<string, SweepTask>();
  for (const t of tasks) {
    const dir = runDirs.get(t.index);
    if (!dir) continue;
    const other = owner.get(dir);
    if (other) {
      throw new UserError(
        `runs ${other.label} and ${t.label} would train in the same directory ${dir}; the run name does not show what tells them apart: put the placeholders in the dataset or in a setting the run name holds`,
      );
    }
    owner.set(dir, t);
  }
}

function describeOutcome(o: TaskOutcome, runDir: string | undefined): string {
  if (o.status === 'done') {
    let acc = '';
    if (runDir) {
      try {
        acc = `: last20 ${extractAccuracy(runDir).accuracy.last20.toFixed(2)}%`;
      } catch {
        // a run with no evaluations yet has no accuracy to show; the report will say so
      }
    }
    return `Done ${o.task.label}${acc}`;
  }
  if (o.status === 'interrupted') return `Stopped ${o.task.label} (resumable; log ${o.log})`;
  return `Failed ${o.task.label}: ${o.reason} (log ${o.log})`;
}
