import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import { BACKEND_HELP } from '../backend/select';
import { buildMnist } from '../data/mnist';
import { createSplit } from '../data/create-split';
import { dataRoot, splitPrefix } from '../data/paths';
import { intArg } from './parse';
import { runTrain } from './train';

/**
 * The main job on the embedded default data: the 10,000 MNIST digits of the `mnist` package,
 * a 100-label split (seed 1), then the supervised baseline and MixMatch with the small CNN,
 * side by side. Every step skips work already done, so a second run only retrains what is missing.
 */
export interface DemoOptions {
  dataDir?: string;
  trainDir: string;
  trainKimg: number;
  backend?: string;
}

/**
 * Demo schedule: short runs (64 kimg = 1,024 steps of 64), so the weight EMA gets a horizon of
 * about 100 steps (0.99, not the originals' 0.999 for 2^20 steps) and the unlabelled weight ramps
 * over the first quarter. MixMatch uses the originals' CIFAR-10 settings (beta 0.75, w_match 75).
 */
export const DEMO_DEFAULTS = { trainKimg: 64 };

/** The demo's training dataset: the embedded MNIST digits, 100 labels (seed 1), 1000 validation records. */
export const DEMO_DATASET = 'mnist.1@100-1000';

/** Builds the embedded MNIST dataset and its 100-label split under `root`, skipping what exists. */
export async function prepareDemoData(root: string, log: (l: string) => void): Promise<string> {
  const built = await buildMnist(root);
  log(built.skipped ? `MNIST already in ${root}` : `Wrote MNIST to ${root}: ${built.train} train, ${built.test} test`);
  const prefix = splitPrefix(root, 'mnist', 1, 100);
  if (!['-label.tfrecord', '-unlabel.tfrecord', '-map.json'].every((s) => fs.existsSync(prefix + s))) {
    const s = await createSplit({ root, dataset: 'mnist', seed: 1, size: 100 });
    log(`Split ${path.basename(prefix)}: ${s.labelCount} labelled, ${s.unlabelCount} unlabelled`);
  }
  return DEMO_DATASET;
}

/**
 * Settings every demo run shares for a budget of `trainKimg`: the small CNN, 16 evaluations, and
 * a weight EMA with a horizon that suits a short run.
 */
export function demoSchedule(trainKimg: number): Record<string, number | string> {
  const report = Math.max(1, Math.floor(trainKimg / 16));
  return { arch: 'te_cnn', train_kimg: trainKimg, report_kimg: report, save_kimg: report, ema: 0.99 };
}

export async function runDemo(o: DemoOptions, log: (l: string) => void = (l) => console.log(l)) {
  const root = dataRoot(o.dataDir);
  const dataset = await prepareDemoData(root, log);
  const common = {
    dataset,
    dataDir: root,
    trainDir: o.trainDir,
    backend: o.backend,
    skipCorrupt: false,
  };
  const shared = demoSchedule(o.trainKimg);
  const sup = await runTrain({ ...common, algo: 'supervised', settings: { ...shared } }, log);
  const mm = await runTrain({ ...common, algo: 'mixmatch', settings: { ...shared, beta: 0.75, w_match: 75, warmup_kimg: Math.max(1, Math.floor(o.trainKimg / 4)) } }, log);
  const acc = (r: typeof sup) => r.reports[r.reports.length - 1]?.test ?? NaN;
  log('');
  log('Test accuracy on MNIST with 100 labels (small CNN, EMA weights):');
  log(`  supervised  ${acc(sup).toFixed(2)}%`);
  log(`  mixmatch    ${acc(mm).toFixed(2)}%`);
  return { supervised: acc(sup), mixmatch: acc(mm), runs: [sup.runDir, mm.runDir] };
}

export function register(program: Command): void {
  program
    .command('demo')
    .summary('the whole workflow on embedded MNIST')
    .description('the whole workflow on the embedded MNIST digits: dataset, 100-label split, supervised vs MixMatch')
    .option('--data-dir <dir>', 'data root (default: $ML_DATA, else ./data)')
    .option('--train-dir <dir>', 'where run directories go', './experiments')
    .option('--train-kimg <n>', 'training length of each run in kimg', intArg(1), DEMO_DEFAULTS.trainKimg)
    .option('--backend <name>', BACKEND_HELP)
    .action(async (o: DemoOptions) => {
      await runDemo(o);
    });
}
