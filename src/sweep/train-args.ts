import * as path from 'path';
import { Command, CommanderError } from 'commander';
import { ALGORITHMS, getAlgorithm } from '../algorithms/registry';
import type { HParamValue } from '../algorithms/types';
import * as trainCommand from '../commands/train';
import { dataRoot } from '../data/paths';
import { parseTrainDatasetName } from '../data/dataset-name';
import { UserError } from '../errors';
import { SHARED, Settings, readConfigFile, resolveSettings, toTrainConfig } from '../train/config';
import { isFullySupervisedName } from '../train/dataset';
import type { TrainConfig } from '../train/trainer';

/**
 * One swept `ssl train` command, understood without running it: parsed by the train command's own
 * option definitions (so a typo fails the whole sweep before anything starts) and resolved to the
 * settings `ssl train` would use, which decide the run directory.
 */
export interface ResolvedTrain {
  /** The command as given: ['train', ...]. */
  argv: string[];
  dataset: string;
  /** Absolute data root (--data-dir, else $ML_DATA, else ./data), as `ssl train` resolves it. */
  dataRoot: string;
  /** The --data-dir flag, when given: passed on to the commands that create splits. */
  dataDirFlag?: string;
  /** Absolute --train-dir. */
  trainDir: string;
  cfg: TrainConfig;
  /**
   * What makes two commands the same run: the settings that shape the model and its training.
   * Flags that do not (--backend, --keep-ckpt, --eval-batch, --skip-corrupt) are left out.
   */
  identity: RunIdentity;
}

export interface RunIdentity {
  algo: string;
  dataset: string;
  dataRoot: string;
  augment: string | null;
  seed: number;
  settings: Record<string, HParamValue>;
}

const NOT_IDENTITY = new Set(['keep_ckpt', 'eval_batch']);

function camel(snake: string): string {
  return snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Commander's parse of `ssl train <args>`, with the action replaced by a capture. */
function parseTrainOptions(args: string[]): Record<string, unknown> {
  const program = new Command();
  let errors = '';
  program.exitOverride().configureOutput({ writeErr: (s) => (errors += s), writeOut: () => undefined });
  // ssl's global option, which `ssl train` accepts too
  program.option('--verbose');
  trainCommand.register(program);
  const train = program.commands.find((c) => c.name() === 'train');
  if (!train) throw new Error('the train command did not register');
  let captured: Record<string, unknown> | null = null;
  train.action((o: Record<string, unknown>) => {
    captured = o;
  });
  try {
    program.parse(['train', ...args], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      const msg = (errors.trim().split('\n')[0] || e.message).replace(/^error: /, '');
      throw new UserError(`the swept command \`ssl train ${args.join(' ')}\`: ${msg}`);
    }
    throw e;
  }
  if (!captured) throw new UserError(`the swept command \`ssl train ${args.join(' ')}\` does not train (is --help in it?)`);
  return captured;
}

export function resolveTrainArgs(argv: string[], cwd: string = process.cwd()): ResolvedTrain {
  if (argv[0] !== 'train') {
    throw new UserError(`ssl sweep runs \`ssl train\` commands; the command after '--' starts with '${argv[0] ?? ''}' (write: ssl sweep ... -- train --dataset ...)`);
  }
  const o = parseTrainOptions(argv.slice(1));
  const flags: Settings = {};
  const specs = [...SHARED, ...ALGORITHMS.flatMap((a) => a.hparams)];
  for (const s of specs) {
    const v = o[camel(s.name)];
    if (v !== undefined) flags[s.name] = v as HParamValue;
  }
  const algo = getAlgorithm(String(o.algo));
  const dataset = String(o.dataset);
  const configFile = o.config === undefined ? undefined : path.resolve(cwd, String(o.config));
  const settings = resolveSettings(algo, configFile ? readConfigFile(configFile) : {}, flags);
  const seed = o.seed !== undefined ? Number(o.seed) : isFullySupervisedName(dataset) ? 0 : parseTrainDatasetName(dataset).seed;
  const trainDir = path.resolve(cwd, String(o.trainDir));
  const augment = o.augment === undefined ? undefined : String(o.augment);
  const cfg = toTrainConfig(algo, settings, { trainDir, augment, seed });
  const dataDirFlag = o.dataDir === undefined ? undefined : String(o.dataDir);
  const root = dataDirFlag === undefined ? dataRoot() : path.resolve(cwd, dataDirFlag);
  const all: Record<string, HParamValue> = { ...settings.shared, ...settings.hp };
  const identitySettings = Object.fromEntries(
    Object.keys(all)
      .filter((k) => !NOT_IDENTITY.has(k))
      .sort()
      .map((k) => [k, all[k]]),
  );
  return {
    argv,
    dataset,
    dataRoot: root,
    dataDirFlag,
    trainDir,
    cfg,
    identity: { algo: algo.name, dataset, dataRoot: root, augment: augment ?? null, seed, settings: identitySettings },
  };
}

/** Where two identities differ, as `name: here vs there` strings (empty when they are the same run). */
export function identityDifferences(a: RunIdentity, b: RunIdentity): string[] {
  const out: string[] = [];
  const cmp = (name: string, x: unknown, y: unknown) => {
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push(`${name} ${JSON.stringify(x)} vs ${JSON.stringify(y)}`);
  };
  cmp('algo', a.algo, b.algo);
  cmp('dataset', a.dataset, b.dataset);
  cmp('data root', a.dataRoot, b.dataRoot);
  cmp('augment', a.augment, b.augment);
  cmp('seed', a.seed, b.seed);
  const keys = [...new Set([...Object.keys(a.settings ?? {}), ...Object.keys(b.settings ?? {})])].sort();
  for (const k of keys) cmp(k, a.settings?.[k], b.settings?.[k]);
  return out;
}
