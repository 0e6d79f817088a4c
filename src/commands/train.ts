import * as path from 'path';
import { Command } from 'commander';
import { ALGORITHMS, getAlgorithm } from '../algorithms/registry';
import type { Algorithm, HParamSpec, HParamValue } from '../algorithms/types';
import { augmentationNames, getAugmentation } from '../data/augment';
import { dataRoot } from '../data/paths';
import { BACKEND_HELP, selectBackend, describeBackend } from '../backend/select';
import { SHARED, Settings, readConfigFile, resolveSettings, sharedDefault, toTrainConfig } from '../train/config';
import { describeCorrupt, type CorruptRecord } from '../data/tfrecord';
import { isFullySupervisedName, loadTrainingData, readClassMapping } from '../train/dataset';
import { defaultAugmentWorkers } from '../train/feeder';
import { train } from '../train/trainer';
import { createProgress } from '../util/progress';
import { UserError } from '../errors';
import { boolArg, floatArg, intArg, kebab } from './parse';
import { parseTrainDatasetName } from '../data/dataset-name';

export interface TrainCommandOptions {
  algo: string;
  dataset: string;
  dataDir?: string;
  trainDir: string;
  config?: string;
  augment?: string;
  /** RealMix's class-mapping JSON: per-class test accuracy is logged under these names. */
  classMapping?: string;
  seed?: number;
  backend?: string;
  /** Augmentation worker threads; 0 augments on the training thread. */
  augmentWorkers?: number;
  skipCorrupt: boolean;
  settings: Settings;
}

function camel(snake: string): string {
  return snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Every algorithm's hyperparameters, merged by name, with each algorithm's default in the help.
 * One name means one flag, so algorithms that share a name must agree on its type.
 */
export function algorithmFlags(algorithms: Algorithm[] = ALGORITHMS): Array<{ spec: HParamSpec; help: string }> {
  const merged = new Map<string, { spec: HParamSpec; defaults: string[]; owner: string; helps: Map<string, string[]> }>();
  for (const a of algorithms) {
    for (const h of a.hparams) {
      const e = merged.get(h.name) ?? { spec: h, defaults: [], owner: a.name, helps: new Map<string, string[]>() };
      if (e.spec.type !== h.type) throw new Error(`hyperparameter ${h.name} is ${e.spec.type} in ${e.owner} but ${h.type} in ${a.name}: one flag needs one type`);
      e.defaults.push(`${a.name}: ${h.default}`);
      e.helps.set(h.help, [...(e.helps.get(h.help) ?? []), a.name]);
      merged.set(h.name, e);
    }
  }
  return [...merged.values()].map((e) => {
    // one flag may mean slightly different things to different algorithms: say so, per algorithm
    const help = e.helps.size === 1 ? e.spec.help : [...e.helps].map(([text, names]) => `${names.join(', ')}: ${text}`).join('; ');
    const choices = e.spec.choices ? `; one of ${e.spec.choices.join(', ')}` : '';
    return { spec: e.spec, help: `${help}${choices} (default ${e.defaults.join(', ')})` };
  });
}

/** A shared setting's help: its default and the algorithms that change it. */
export function sharedFlagHelp(spec: HParamSpec, algorithms: Algorithm[] = ALGORITHMS): string {
  const overrides = algorithms.filter((a) => sharedDefault(a, spec) !== spec.default).map((a) => `${a.name}: ${sharedDefault(a, spec)}`);
  const choices = spec.choices ? `; one of ${spec.choices.join(', ')}` : '';
  return `${spec.help}${choices} (default ${spec.default}${overrides.length ? `; ${overrides.join(', ')}` : ''})`;
}

function flagSyntax(spec: HParamSpec): string {
  if (spec.type === 'bool') return `--${kebab(spec.name)} [bool]`;
  return `--${kebab(spec.name)} <${spec.type === 'string' ? 'value' : 'n'}>`;
}

function parserFor(spec: HParamSpec): (v: string) => HParamValue {
  if (spec.type === 'int') return intArg();
  if (spec.type === 'float') return floatArg();
  if (spec.type === 'bool') return boolArg;
  return (v: string) => v;
}

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .summary('train a model; resumes if interrupted')
    .description('train a semi-supervised (or supervised) classifier; resumes from the newest checkpoint')
    .option('--algo <name>', `algorithm: ${ALGORITHMS.map((a) => a.name).join(', ')}`, 'mixmatch')
    .option('--dataset <name>', 'dataset <name>.<seed>@<labelled>-<valid>, or <name>-<valid> for fully-supervised training', 'cifar10.3@250-5000')
    .option('--data-dir <dir>', 'data root (default: $ML_DATA, else ./data)')
    .option('--train-dir <dir>', 'where run directories go', './experiments')
    .option('--config <json>', 'JSON file of hyperparameters; flags override it, it overrides defaults')
    .option('--augment <name>', `training augmentation: ${augmentationNames().join(', ')}, or a chain such as cifar10+cutout (default: the dataset family's)`)
    .option('--class-mapping <json>', 'class names ({"0": "cat", ...}, as RealMix writes them): logs test accuracy per class as accuracy_test/<name>')
    .option('--seed <n>', 'seed of the run\'s generator (initialisation, batches, augmentation, MixUp) (default: the split seed)', intArg(0))
    .option('--backend <name>', BACKEND_HELP)
    .option('--augment-workers <n>', `threads that augment the next batches while a step trains; 0 augments on the training thread (default: the cores but one, 1 to 4; here ${defaultAugmentWorkers()})`, intArg(0))
    .option('--skip-corrupt', 'skip corrupt records instead of stopping', false);
  for (const s of SHARED) cmd.option(flagSyntax(s), sharedFlagHelp(s), parserFor(s));
  const algoFlags = algorithmFlags();
  for (const { spec, help } of algoFlags) cmd.option(flagSyntax(spec), help, parserFor(spec));
  cmd.action(async (o: Record<string, unknown>) => {
    const settings: Settings = {};
    for (const s of [...SHARED, ...algoFlags.map((f) => f.spec)]) {
      const v = o[camel(s.name)];
      if (v !== undefined) settings[s.name] = v as HParamValue;
    }
    await runTrain({
      algo: String(o.algo),
      dataset: String(o.dataset),
      dataDir: o.dataDir as string | undefined,
      trainDir: String(o.trainDir),
      config: o.config as string | undefined,
      augment: o.augment as string | undefined,
      classMapping: o.classMapping as string | undefined,
      seed: o.seed as number | undefined,
      backend: o.backend as string | undefined,
      augmentWorkers: o.augmentWorkers as number | undefined,
      skipCorrupt: Boolean(o.skipCorrupt),
      settings,
    });
  });
}

export async function runTrain(o: TrainCommandOptions, log: (line: string) => void = (l) => console.log(l)) {
  const algo = getAlgorithm(o.algo);
  const settings = resolveSettings(algo, o.config ? readConfigFile(o.config) : {}, o.settings);
  const seed = o.seed ?? (isFullySupervisedName(o.dataset) ? 0 : parseTrainDatasetName(o.dataset).seed);
  // unknown augmentation names fail now, not after the data has loaded
  if (o.augment) getAugmentation(o.augment);
  const strong = algo.strong?.(settings.hp);
  if (strong && strong.views > 0) getAugmentation(strong.augmentation);
  const classNames = o.classMapping ? readClassMapping(o.classMapping) : undefined;
  const cfg = { ...toTrainConfig(algo, settings, { trainDir: path.resolve(o.trainDir), augment: o.augment, seed, classNames }), augmentWorkers: o.augmentWorkers };
  const backend = await selectBackend(o.backend ?? process.env.SSL_BACKEND);
  for (const line of describeBackend(backend)) log(line);
  const unlabeled = algo.views(settings.hp) > 0 || (strong?.views ?? 0) > 0;
  const corrupt: CorruptRecord[] = [];
  const data = await loadTrainingData(dataRoot(o.dataDir), o.dataset, { unlabeled, skipCorrupt: o.skipCorrupt, nclass: classNames?.length, onCorrupt: (c) => corrupt.push(c) });
  if (corrupt.length > 0) log(`Skipped ${corrupt.length} corrupt record${corrupt.length === 1 ? '' : 's'} (--skip-corrupt); the first: ${describeCorrupt(corrupt[0])}`);
  log(`Dataset ${data.name}: ${data.labeled.count} labelled, ${data.unlabeled?.count ?? 0} unlabelled, ${data.valid.count} valid, ${data.test.count} test; ${data.nclass} classes, ${data.shape.height}x${data.shape.width}x${data.shape.channels}`);
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    log('Stopping: writing a checkpoint (re-run the same command to resume)');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const progress = createProgress(`${algo.name} kimg`, cfg.trainKimg);
  try {
    // above a live bar when both streams are the terminal; otherwise results stay on stdout
    const viaBar = Boolean(process.stderr.isTTY && process.stdout.isTTY);
    const r = await train(cfg, data, { log: (l) => (viaBar ? progress.log(l) : log(l)), progress, shouldStop: () => interrupted });
    if (r.stopped) throw new UserError(`interrupted at ${r.imagesSeen >> 10} kimg; checkpoint saved in ${path.join(r.runDir, 'tf')}; re-run the same command to resume`);
    const last = r.reports[r.reports.length - 1];
    log(`Done: ${r.runDir}${last ? ` (test accuracy ${last.test.toFixed(2)}%)` : ''}`);
    return r;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
