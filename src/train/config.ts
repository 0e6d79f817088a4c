import * as fs from 'fs';
import { UserError } from '../errors';
import type { Algorithm, HParamSpec, HParamValue } from '../algorithms/types';
import type { TrainConfig } from './trainer';

/**
 * Hyperparameter precedence: the algorithm's defaults < `--config <json>` < flags given on the
 * command line. Shared settings (lr, wd, batch, ...) follow the same rule, with the originals'
 * script-level defaults.
 */
export const SHARED: HParamSpec[] = [
  { name: 'arch', type: 'string', default: 'resnet', help: 'network: resnet (WRN-28-k) or te_cnn (the small CNN of Temporal Ensembling)', choices: ['resnet', 'te_cnn'] },
  { name: 'filters', type: 'int', default: 32, help: 'resnet width of the first stage (32 = WRN-28-2)' },
  { name: 'scales', type: 'int', default: 0, help: 'resnet stages; 0 = ceil(log2(image width)) - 2' },
  { name: 'repeat', type: 'int', default: 4, help: 'resnet residual blocks per stage' },
  { name: 'lr', type: 'float', default: 0.002, help: 'Adam learning rate (constant)' },
  { name: 'wd', type: 'float', default: 0.02, help: 'decoupled weight decay: kernels *= 1 - wd*lr after each step' },
  { name: 'ema', type: 'float', default: 0.999, help: 'decay of the weight EMA used for evaluation' },
  { name: 'batch', type: 'int', default: 64, help: 'labelled batch size (the unlabelled batch matches it)' },
  { name: 'train_kimg', type: 'int', default: 65536, help: 'training length in kimg (1 kimg = 1024 images)' },
  { name: 'report_kimg', type: 'int', default: 64, help: 'evaluate and log every this many kimg' },
  { name: 'save_kimg', type: 'int', default: 64, help: 'checkpoint every this many kimg' },
  { name: 'keep_ckpt', type: 'int', default: 50, help: 'checkpoints to keep' },
  { name: 'eval_batch', type: 'int', default: 256, help: 'batch size for evaluation' },
];

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
    throw new UserError(`--config ${file} is not valid JSON (${(e as Error).message})`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new UserError(`--config ${file} must hold a JSON object of hyperparameters`);
  const out: Settings = {};
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
  for (const s of SHARED) out[s.name] = algo.sharedDefaults?.[s.name] ?? s.default;
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
  return { shared, hp };
}

export function toTrainConfig(algo: Algorithm, s: { shared: Settings; hp: Settings }, extra: { trainDir: string; augment?: string; seed: number }): TrainConfig {
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
    augment: extra.augment,
    seed: extra.seed,
  };
}
