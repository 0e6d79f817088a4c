import * as fs from 'fs';
import * as path from 'path';
import { parseTrainDatasetName } from '../data/dataset-name';
import { UserError } from '../errors';
import { listCheckpoints } from '../train/checkpoint';
import { readEventFile } from '../train/events';
import { AccuracyStats, DEFAULT_ACCURACY_TAGS, extractAccuracy } from '../train/extract-accuracy';

/** One run directory as the report sees it. */
export interface RunRecord {
  dir: string;
  /** args.json `model`: `<Class>_<kwargs>`. */
  runName: string;
  algo: string;
  className: string;
  kwargs: Record<string, unknown>;
  dataset: string;
  /** Dataset name without seed and sizes (cifar10, cifar10_aug50). */
  name: string;
  seed: number | null;
  /** Labelled examples; null for fully-supervised `<name>-<valid>` datasets. */
  labels: number | null;
  valid: number | null;
  trainKimg: number | null;
  /** Images of the newest checkpoint. */
  imagesSeen: number;
  /** Fewer images than train_kimg: still running, or stopped. */
  inProgress: boolean;
  /** stats/accuracy.json; absent while the run has no test accuracy yet. */
  accuracy?: AccuracyStats;
  /** Test accuracy per evaluation, by kimg. */
  curve: Array<{ kimg: number; accuracy: number }>;
}

interface ArgsJson {
  algo?: string;
  dataset?: string;
  model?: string;
  kwargs?: Record<string, unknown>;
  train_kimg?: number;
}

const MAX_DEPTH = 6;

/** Every directory below `root` holding args/args.json (a run), not looking inside runs. */
export function findRunDirs(root: string): string[] {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new UserError(`${root} is not a directory; give the experiments folder (ssl train's --train-dir)`);
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (fs.existsSync(path.join(dir, 'args', 'args.json'))) {
      out.push(dir);
      return;
    }
    if (depth >= MAX_DEPTH) return;
    let entries: fs.Dirent[] = [];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') walk(path.join(dir, e.name), depth + 1);
    }
  };
  walk(path.resolve(root), 0);
  return out;
}

function eventFiles(dir: string): string[] {
  const tf = path.join(dir, 'tf');
  if (!fs.existsSync(tf)) return [];
  return fs
    .readdirSync(tf)
    .filter((n) => n.startsWith('events.out.tfevents.'))
    .sort()
    .map((n) => path.join(tf, n));
}

/** Test accuracy by kimg from the event files, in the tag extract-accuracy uses; a re-evaluated step keeps its latest value. */
export function readCurve(dir: string, tag?: string): { tag: string | null; curve: RunRecord['curve'] } {
  const events = eventFiles(dir).flatMap((f) => readEventFile(f));
  const tags = new Set(events.flatMap((e) => e.values.map((v) => v.tag)));
  const chosen = tag ?? DEFAULT_ACCURACY_TAGS.find((t) => tags.has(t)) ?? null;
  if (chosen === null) return { tag: null, curve: [] };
  const byStep = new Map<number, number>();
  for (const e of events) {
    const v = e.values.find((x) => x.tag === chosen);
    if (v) byStep.set(e.step, v.value);
  }
  const curve = [...byStep.entries()].sort((a, b) => a[0] - b[0]).map(([step, accuracy]) => ({ kimg: step / 1024, accuracy }));
  return { tag: chosen, curve };
}

/**
 * stats/accuracy.json, (re)made by extract-accuracy when it is missing or older than the newest
 * event file; undefined while the run has logged no test accuracy.
 */
export function ensureAccuracy(dir: string, tag?: string): { accuracy?: AccuracyStats; extracted: boolean } {
  const stats = path.join(dir, 'stats', 'accuracy.json');
  const files = eventFiles(dir);
  if (files.length === 0) return { extracted: false };
  const newest = Math.max(...files.map((f) => fs.statSync(f).mtimeMs));
  if (fs.existsSync(stats) && fs.statSync(stats).mtimeMs >= newest) {
    try {
      const a = JSON.parse(fs.readFileSync(stats, 'utf8')) as AccuracyStats;
      if (typeof a.last20 === 'number') return { accuracy: a, extracted: false };
    } catch {
      // unreadable: made afresh below
    }
  }
  try {
    return { accuracy: extractAccuracy(dir, { tag }).accuracy, extracted: true };
  } catch (e) {
    // no test accuracy logged yet (a run that has just started)
    if (e instanceof UserError && /no .* values in/.test(e.message)) return { extracted: false };
    throw e;
  }
}

export function readRun(dir: string, tag?: string): RunRecord & { extracted: boolean } {
  const argsPath = path.join(dir, 'args', 'args.json');
  let args: ArgsJson;
  try {
    args = JSON.parse(fs.readFileSync(argsPath, 'utf8')) as ArgsJson;
  } catch (e) {
    throw new UserError(`${argsPath} is unreadable (${(e as Error).message}); is ${dir} a run directory?`);
  }
  const dataset = String(args.dataset ?? path.basename(path.dirname(dir)));
  const runName = String(args.model ?? path.basename(dir));
  let name = dataset;
  let seed: number | null = null;
  let labels: number | null = null;
  let valid: number | null = null;
  const full = /^([A-Za-z0-9_]+)-(\d+)$/.exec(dataset);
  if (full) {
    name = full[1];
    valid = Number(full[2]);
  } else {
    try {
      const p = parseTrainDatasetName(dataset);
      ({ name, seed, size: labels, valid } = p);
    } catch {
      // a name of another grammar: reported as it is
    }
  }
  const last = listCheckpoints(path.join(dir, 'tf')).pop();
  const imagesSeen = last?.imagesSeen ?? 0;
  const trainKimg = typeof args.train_kimg === 'number' ? args.train_kimg : null;
  const { accuracy, extracted } = ensureAccuracy(dir, tag);
  return {
    dir,
    runName,
    algo: String(args.algo ?? runName.split('_')[0].toLowerCase()),
    className: runName.split('_')[0],
    kwargs: args.kwargs ?? {},
    dataset,
    name,
    seed,
    labels,
    valid,
    trainKimg,
    imagesSeen,
    inProgress: trainKimg === null ? false : imagesSeen < trainKimg * 1024,
    accuracy,
    curve: readCurve(dir, tag).curve,
    extracted,
  };
}
