import * as fs from 'fs';
import { UserError } from '../errors';
import type { Algorithm, HParamSpec, HParamValue } from '../algorithms/types';
import { ARCHS } from '../models';
import { LR_DECAYS, OPTIMIZERS, type LrDecay, type OptimizerKind } from './optimizer';
import { WD_MODES, type WdMode } from './step';
import type { TrainConfig } from './trainer';

/**
 * Hyperparameter precedence: the algorithm's defaults < `--config <json>` < flags given on the
 * command line. Shared settings (lr, wd, batch, ...) follow the same rule, with the originals'
 * script-level defaults.
 */
export const SHARED: HParamSpec[] = [
  {
    name: 'arch',
    type: 'string',
    default: 'resnet',
    help: 'network: resnet (WRN-28-k), cnn13, convnet, or te_cnn (the small CNN of Temporal Ensembling)',
    choices: [...ARCHS],
  },
  { name: 'filters', type: 'int', default: 32, help: 'width of the first stage (resnet: 32 = WRN-28-2)' },
  { name: 'scales', type: 'int', default: 0, help: 'stages; 0 = ceil(log2(image width)) - 2' },
  { name: 'repeat', type: 'int', default: 4, help: 'resnet residual blocks per stage' },
  { name: 'lr', type: 'float', default: 0.002, help: 'learning rate (constant unless --lr-decay cosine)' },
  { name: 'wd', type: 'float', default: 0.02, help: 'weight decay on kernels (not biases or batch-norm parameters), as --wd-mode says' },
  { name: 'ema', type: 'float', default: 0.999, help: 'decay of the weight EMA used for evaluation' },
  { name: 'batch', type: 'int', default: 64, help: 'labelled batch size (the unlabelled batch is uratio times it)' },
  { name: 'train_kimg', type: 'int', default: 65536, help: 'training length in kimg (1 kimg = 1024 images)' },
  { name: 'report_kimg', type: 'int', default: 64, help: 'evaluate and log every this many kimg' },
  { name: 'save_kimg', type: 'int', default: 64, help: 'checkpoint every this many kimg' },
  { name: 'keep_ckpt', type: 'int', default: 50, help: 'checkpoints to keep' },
  { name: 'eval_batch', type: 'int', default: 256, help: 'batch size for evaluation' },
  // FixMatch's recipe, selectable for any algorithm; in the run name only when not the algorithm's default
  { name: 'optimizer', type: 'string', default: 'adam', help: 'adam (TF defaults) or sgd (Nesterov momentum)', choices: [...OPTIMIZERS], inName: 'if-changed' },
  { name: 'momentum', type: 'float', default: 0.9, help: 'Nesterov momentum of --optimizer sgd', inName: 'if-changed' },
  { name: 'lr_decay', type: 'string', default: 'none', help: 'none, or cosine: lr * cos(7 pi k / 16 K) at image k of K', choices: [...LR_DECAYS], inName: 'if-changed' },
  {
    name: 'wd_mode',
    type: 'string',
    default: 'decoupled',
    help: 'decoupled: kernels *= 1 - wd*lr after each step (MixMatch); l2: wd * sum(kernel^2)/2 added to the loss (FixMatch)',
    choices: [...WD_MODES],
    inName: 'if-changed',
  },
  {
    name: 'nan_policy',
    type: 'string',
    default: 'stop',
    help: 'a step whose loss or gradients are NaN or infinite: stop (keep the last good checkpoint) or skip (drop that step, count it, go on)',
    choices: ['stop', 'skip'],
    inName: false,
  },
];

/** A shared setting's default for an algorithm: the algorithm's override, else the shared one. */
export function sharedDefault(algo: Algorithm, spec: HParamSpec): HParamValue {
  return algo.sharedDefaults?.[spec.name] ?? spec.default;
}

export type Settings = Record<string, HParamValue>;

export function readConfigFile(file: string): Settings {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read --config ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    // V8 quotes the offending text, line breaks and all; the error must stay one line
    throw new UserError(`--config ${file} is not valid JSON (${(e as Error).message.replace(/[\u0000-\u001f\u007f]+/g, ' ')})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UserError(`--config ${file} must hold a JSON object of hyperparameters`);
  // no prototype: a "__proto__" key must land as a (refused) setting, not vanish into the prototype
  const out: Settings = Object.create(null) as Settings;
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean') throw new UserError(`--config ${file}: ${k} must be a number, string or boolean`);
    out[k.replace(/-/g, '_')] = v;
  }
  return out;
}

function coerce(spec: HParamSpec, v: HParamValue, where: string): HParamValue {
  switch (spec.type) {
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw new UserError(`${where}: ${spec.name} must be an integer`);
      return v;
    case 'float':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new UserError(`${where}: ${spec.name} must be a number`);
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw new UserError(`${where}: ${spec.name} must be true or false`);
      return v;
    case 'string':
      if (typeof v !== 'string') throw new UserError(`${where}: ${spec.name} must be a string`);
      if (spec.choices && !spec.choices.includes(v)) throw new UserError(`${where}: ${spec.name} must be one of ${spec.choices.join(', ')}`);
      return v;
  }
}

/** Resolves every setting of a run; unknown names (a flag of another algorithm) are errors. */
export function resolveSettings(algo: Algorithm, config: Settings, flags: Settings): { shared: Settings; hp: Settings } {
  const specs = [...SHARED, ...algo.hparams];
  const byName = new Map(specs.map((s) => [s.name, s]));
  const out: Settings = {};
  for (const s of SHARED) out[s.name] = sharedDefault(algo, s);
  for (const s of algo.hparams) out[s.name] = s.default;
  for (const [src, values] of [['--config', config], ['command line', flags]] as const) {
    for (const [k, v] of Object.entries(values)) {
      const spec = byName.get(k);
      if (!spec) throw new UserError(`${src}: '${k}' is not a setting of --algo ${algo.name}; it takes: ${specs.map((s) => s.name).join(', ')}`);
      out[k] = coerce(spec, v, src);
    }
  }
  const shared: Settings = {};
  const hp: Settings = {};
  for (const s of SHARED) shared[s.name] = out[s.name];
  for (const s of algo.hparams) hp[s.name] = out[s.name];
  for (const [k, min] of [['batch', 1], ['train_kimg', 1], ['report_kimg', 1], ['save_kimg', 1], ['keep_ckpt', 1], ['eval_batch', 1]] as const) {
    if (Number(shared[k]) < min) throw new UserError(`${k} must be at least ${min}`);
  }
  const momentum = Number(shared.momentum);
  if (momentum < 0 || momentum >= 1) throw new UserError(`momentum must be in [0, 1), got ${momentum}`);
  algo.validate?.(hp);
  return { shared, hp };
}

export function toTrainConfig(algo: Algorithm, s: { shared: Settings; hp: Settings }, extra: { trainDir: string; augment?: string; seed: number; classNames?: string[] }): TrainConfig {
  const g = s.shared;
  return {
    algorithm: algo,
    hp: s.hp,
    trainDir: extra.trainDir,
    arch: String(g.arch),
    filters: Number(g.filters),
    scales: Number(g.scales),
    repeat: Number(g.repeat),
    lr: Number(g.lr),
    wd: Number(g.wd),
    ema: Number(g.ema),
    batch: Number(g.batch),
    trainKimg: Number(g.train_kimg),
    reportKimg: Number(g.report_kimg),
    saveKimg: Number(g.save_kimg),
    keepCkpt: Number(g.keep_ckpt),
    evalBatch: Number(g.eval_batch),
    optimizer: String(g.optimizer) as OptimizerKind,
    momentum: Number(g.momentum),
    lrDecay: String(g.lr_decay) as LrDecay,
    wdMode: String(g.wd_mode) as WdMode,
    nanPolicy: g.nan_policy === 'skip' ? 'skip' : 'stop',
    augment: extra.augment,
    seed: extra.seed,
    classNames: extra.classNames,
  };
}
