import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { formatSplitName, parseTrainDatasetName } from '../data/dataset-name';
import { defaultInputs } from '../data/create-split';
import { splitPrefix } from '../data/paths';
import { UserError } from '../errors';
import { isFullySupervisedName } from '../train/dataset';
import { describeValues, expandGrid, GridAxes, GridValues } from './grid';
import { resolveTrainArgs, ResolvedTrain } from './train-args';

/** One run of the sweep. */
export interface SweepTask {
  index: number;
  values: GridValues;
  /** `seed=1 size=250` */
  label: string;
  train: ResolvedTrain;
}

/** A command that makes a missing split before any run needs it. */
export interface PrepStep {
  kind: 'create-split' | 'aug-copy';
  /** The split it makes, `<name>.<seed>@<size>`. */
  split: string;
  argv: string[];
  /** Runs only after this step (an aug-copy after the split it copies). */
  after?: string;
}

export interface SweepPlan {
  /** Short hash of the command template and the grid: names the sweep's state folder and Slurm jobs. */
  id: string;
  template: string[];
  axes: GridAxes;
  tasks: SweepTask[];
  prep: PrepStep[];
  /** `<train-dir>/sweeps/<id>`: logs, Slurm scripts, exit codes. */
  stateDir: string;
}

export interface PlanOptions {
  /** aug-copy --augment for `_aug<N>` datasets; aug-copy's own default when absent. */
  copyAugment?: string;
  cwd?: string;
  /** Refuse a split whose base files are missing (off for --dry-run, which only prints). */
  strict?: boolean;
}

export function sweepId(template: string[], axes: GridAxes): string {
  const h = crypto.createHash('sha256').update(JSON.stringify({ template, axes })).digest('hex');
  return h.slice(0, 10);
}

function splitExists(root: string, name: string, seed: number, size: number): boolean {
  const prefix = splitPrefix(root, name, seed, size);
  return fs.existsSync(`${prefix}-label.tfrecord`) && fs.existsSync(`${prefix}-unlabel.tfrecord`);
}

/**
 * The create-split and aug-copy commands the runs need, each once however many runs share it
 * (a split serves every run of its seed and size whatever the validation size or algorithm).
 * A dataset whose base files are missing is refused here, before anything starts.
 */
export function planPrep(tasks: SweepTask[], opts: PlanOptions = {}): PrepStep[] {
  const steps: PrepStep[] = [];
  const have = new Set<string>();
  for (const t of tasks) {
    const { dataset, dataRoot: root, dataDirFlag } = t.train;
    if (isFullySupervisedName(dataset)) continue;
    const p = parseTrainDatasetName(dataset);
    const dataDir = dataDirFlag === undefined ? [] : ['--data-dir', dataDirFlag];
    const baseSplit = formatSplitName({ name: p.base, seed: p.seed, size: p.size });
    // ssl train takes an aug-copy dataset's labelled and test files from the base split when it has none
    const needAug = p.augCopies !== undefined && !fs.existsSync(`${splitPrefix(root, p.name, p.seed, p.size)}-unlabel.tfrecord`);
    const needBase = (p.augCopies === undefined && !splitExists(root, p.name, p.seed, p.size)) || (needAug && !splitExists(root, p.base, p.seed, p.size));
    if (needBase && !have.has(baseSplit)) {
      const missing = defaultInputs(root, p.base).filter((f) => !fs.existsSync(f));
      if (missing.length > 0 && opts.strict !== false) {
        throw new UserError(`split ${baseSplit} is missing and so is its input ${missing[0]}; build it first with: ssl create-datasets ${p.base}`);
      }
      const prefix = splitPrefix(root, p.base, p.seed, p.size);
      const stray = [`${prefix}-label.tfrecord`, `${prefix}-unlabel.tfrecord`, `${prefix}-map.json`].filter((f) => fs.existsSync(f));
      if (stray.length > 0 && opts.strict !== false) throw new UserError(`split ${baseSplit} is incomplete (only ${stray.map((f) => path.basename(f)).join(', ')}); remake it with: ssl create-split --force --dataset ${p.base} --seed ${p.seed} --size ${p.size}`);
      have.add(baseSplit);
      steps.push({ kind: 'create-split', split: baseSplit, argv: ['create-split', '--dataset', p.base, '--seed', String(p.seed), '--size', String(p.size), ...dataDir] });
    }
    const augSplit = formatSplitName(p);
    if (needAug && !have.has(augSplit)) {
      have.add(augSplit);
      const augment = opts.copyAugment === undefined ? [] : ['--augment', opts.copyAugment];
      steps.push({
        kind: 'aug-copy',
        split: augSplit,
        argv: ['aug-copy', '--dataset', baseSplit, '--copies', String(p.augCopies), ...augment, ...dataDir],
        after: needBase ? baseSplit : undefined,
      });
    }
  }
  return steps;
}

/** Expands the grid and resolves every run; any bad input fails here, before anything runs. */
export function planSweep(template: string[], axes: GridAxes, opts: PlanOptions = {}): SweepPlan {
  const cwd = opts.cwd ?? process.cwd();
  const points = expandGrid(template, axes);
  const tasks = points.map((p) => ({ index: p.index, values: p.values, label: describeValues(p.values), train: resolveTrainArgs(p.argv, cwd) }));
  const seen = new Map<string, SweepTask>();
  for (const t of tasks) {
    const key = JSON.stringify(t.train.identity) + t.train.trainDir;
    const other = seen.get(key);
    if (other) throw new UserError(`runs ${other.label} and ${t.label} are the same run (the same dataset and settings); check where the placeholders go`);
    seen.set(key, t);
  }
  const id = sweepId(template, axes);
  return { id, template, axes, tasks, prep: planPrep(tasks, opts), stateDir: path.join(tasks[0].train.trainDir, 'sweeps', id) };
}

const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX shell quoting: what a user can paste into a shell loop. */
export function shellQuote(arg: string): string {
  if (arg !== '' && SAFE.test(arg)) return arg;
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function formatCommand(argv: string[], program = 'ssl'): string {
  return [program, ...argv].map(shellQuote).join(' ');
}
