import * as fs from 'fs';
import * as path from 'path';
import type { HParamSpec, HParamType, HParamValue } from '../algorithms/types';
import { defaultAugmentationFor } from '../data/augment';
import { UserError } from '../errors';
import { resolvedScales } from '../models';
import { writeFileAtomic } from '../util/atomic-write';
import { SHARED, sharedDefault } from './config';
import type { TrainingData } from './dataset';
import { runName } from './run-name';
import type { TrainConfig } from './trainer';

/**
 * The run directory: `<train_dir>/<dataset>/<ClassName>_<sorted kwargs>/`, named as the originals
 * name theirs, and its `args/args.json`.
 */

/** What the name needs of a dataset; `base` (the family, for the default augmentation) is derived from the name when absent. */
export type RunData = Pick<TrainingData, 'name' | 'nclass' | 'shape'> & { base?: string };

export interface RunKwarg {
  name: string;
  value: HParamValue;
  type: HParamType;
}

/** The training augmentation's name: --augment, else the dataset family's default. */
export function augmentationName(cfg: Pick<TrainConfig, 'augment'>, data: Pick<RunData, 'name' | 'base'>): string {
  return cfg.augment ?? defaultAugmentationFor(data.base ?? data.name.split(/[.-]/)[0].replace(/_aug[1-9][0-9]*$/, ''));
}

function included(spec: HParamSpec, value: HParamValue, dflt: HParamValue): boolean {
  if (spec.inName === false) return false;
  if (spec.inName === 'if-changed') return value !== dflt;
  return true;
}

/** The model kwargs that make up the run name (the originals': the class's constructor kwargs). */
export function runKwargs(cfg: TrainConfig, data: Pick<RunData, 'name' | 'nclass' | 'shape' | 'base'>): RunKwarg[] {
  const kw: RunKwarg[] = [
    { name: 'arch', value: cfg.arch, type: 'string' },
    { name: 'batch', value: cfg.batch, type: 'int' },
    { name: 'ema', value: cfg.ema, type: 'float' },
    { name: 'lr', value: cfg.lr, type: 'float' },
    { name: 'nclass', value: data.nclass, type: 'int' },
    { name: 'wd', value: cfg.wd, type: 'float' },
  ];
  // the originals pass filters, repeat and scales to every network; te_cnn (not theirs) has none
  if (cfg.arch !== 'te_cnn') {
    kw.push({ name: 'filters', value: cfg.filters, type: 'int' });
    kw.push({ name: 'repeat', value: cfg.repeat, type: 'int' });
    kw.push({ name: 'scales', value: resolvedScales({ scales: cfg.scales, inputShape: [data.shape.height, data.shape.width, data.shape.channels] }), type: 'int' });
  }
  const sharedValues: Record<string, HParamValue> = { optimizer: cfg.optimizer, momentum: cfg.momentum, lr_decay: cfg.lrDecay, wd_mode: cfg.wdMode };
  for (const s of SHARED) {
    if (s.inName !== 'if-changed' || !(s.name in sharedValues)) continue;
    // momentum only matters to sgd
    if (s.name === 'momentum' && cfg.optimizer !== 'sgd') continue;
    if (included(s, sharedValues[s.name], sharedDefault(cfg.algorithm, s))) kw.push({ name: s.name, value: sharedValues[s.name], type: s.type });
  }
  for (const h of cfg.algorithm.hparams) {
    if (included(h, cfg.hp[h.name], h.default)) kw.push({ name: h.runKey ?? h.name, value: cfg.hp[h.name], type: h.type });
  }
  if (cfg.algorithm.augmentationInName) kw.push({ name: 'augmentation', value: augmentationName(cfg, data), type: 'string' });
  return kw;
}

export function runDirFor(cfg: TrainConfig, data: RunData): string {
  return path.join(cfg.trainDir, data.name, runName(cfg.algorithm.className, runKwargs(cfg, data)));
}

function sortedJson(v: unknown, indent: number): string {
  const sortKeys = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sortKeys) : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sortKeys((x as Record<string, unknown>)[k])])) : x;
  return JSON.stringify(sortKeys(v), null, indent);
}

/** Every setting of a run, as written to args/args.json (and read back by inference). */
export function runArgs(cfg: TrainConfig, data: RunData, runDir: string) {
  return {
    algo: cfg.algorithm.name,
    dataset: data.name,
    model: path.basename(runDir),
    kwargs: Object.fromEntries(runKwargs(cfg, data).map((k) => [k.name, k.value])),
    hparams: cfg.hp,
    train_kimg: cfg.trainKimg,
    report_kimg: cfg.reportKimg,
    save_kimg: cfg.saveKimg,
    keep_ckpt: cfg.keepCkpt,
    augment: augmentationName(cfg, data),
    optimizer: { optimizer: cfg.optimizer, momentum: cfg.momentum, lr_decay: cfg.lrDecay, wd_mode: cfg.wdMode },
    seed: cfg.seed,
    ...(cfg.classNames ? { class_names: cfg.classNames } : {}),
    arch: { arch: cfg.arch, filters: cfg.filters, scales: cfg.scales, repeat: cfg.repeat, nclass: data.nclass, image_shape: [data.shape.height, data.shape.width, data.shape.channels] },
  };
}

/**
 * Creates the run directory (and tf/) and writes args/args.json, refusing a directory that holds
 * another algorithm's or dataset's run.
 */
export function prepareRunDir(runDir: string, args: ReturnType<typeof runArgs>): void {
  fs.mkdirSync(path.join(runDir, 'tf'), { recursive: true });
  const argsPath = path.join(runDir, 'args', 'args.json');
  if (fs.existsSync(argsPath)) {
    let prev: { algo?: string; dataset?: string; model?: string };
    try {
      prev = JSON.parse(fs.readFileSync(argsPath, 'utf8'));
    } catch {
      throw new UserError(`${argsPath} is unreadable; move the run directory away to start afresh`);
    }
    if (prev.algo !== args.algo || prev.dataset !== args.dataset || prev.model !== args.model) {
      throw new UserError(`${runDir} holds a run of ${prev.algo} on ${prev.dataset}, not ${args.algo} on ${args.dataset}; use another --train-dir`);
    }
  }
  writeFileAtomic(argsPath, sortedJson(args, 4) + '\n');
}
