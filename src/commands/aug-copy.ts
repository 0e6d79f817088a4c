import { Command } from 'commander';
import { augmentationNames } from '../data/augment';
import { augCopy, AugCopyResult } from '../data/aug-copy';
import { defaultWorkerCount } from '../data/augment-workers';
import { dataRoot } from '../data/paths';
import { createProgress, Progress } from '../util/progress';
import { intArg } from './parse';

export interface AugCopyCommandOptions {
  dataset: string;
  copies: number;
  augment: string;
  seed: number;
  keepOriginal: boolean;
  workers?: number;
  dataDir?: string;
  force: boolean;
}

export function register(program: Command): void {
  program
    .command('aug-copy')
    .alias('make-aug-copy')
    .summary('precompute shuffled augmented copies of a split\'s unlabelled images')
    .description(
      'RealMix\'s make_aug_copy: writes <data-dir>/SSL/<name>_aug<copies>.<seed>@<size>-unlabel.tfrecord ' +
        '(<copies> augmented copies of every unlabelled image, shuffled), the same -label.tfrecord and a -map.json ' +
        'beside it, and <data-dir>/<name>_aug<copies>-test.tfrecord, ready for ' +
        'ssl train --dataset <name>_aug<copies>.<seed>@<size>-<valid>',
    )
    .requiredOption('--dataset <split>', 'source split <name>.<seed>@<size>, e.g. cifar10.1@250 (required)')
    .option('--copies <n>', 'augmented copies of each unlabelled image (the original\'s --aug_copy)', intArg(), 1)
    .option('--augment <name>', `augmentation: ${augmentationNames().join(', ')}`, 'cifar10')
    .option('--seed <n>', 'seed of the shuffle (Python\'s random.shuffle, as the original, which always used 1) and of the augmentations', intArg(0), 1)
    .option('--keep-original', 'also keep each un-augmented image (one more copy, unchanged)', false)
    .option('--workers <n>', `worker threads (1: do the work in the main thread) (default: ${defaultWorkerCount()}, the cores available)`, intArg(1))
    .option('--data-dir <dir>', 'data root (default: $ML_DATA, else ./data)')
    .option('--force', 'overwrite existing copies of the same name', false)
    .action(async (o: AugCopyCommandOptions) => {
      await runAugCopy(o);
    });
}

export async function runAugCopy(o: AugCopyCommandOptions, log: (line: string) => void = (l) => console.log(l)): Promise<AugCopyResult> {
  let bar: Progress | null = null;
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  let r: AugCopyResult;
  try {
    r = await augCopy({
      root: dataRoot(o.dataDir),
      dataset: o.dataset,
      copies: o.copies,
      augment: o.augment,
      seed: o.seed,
      keepOriginal: o.keepOriginal,
      workers: o.workers,
      force: o.force,
      signal: controller.signal,
      onProgress: (done, total) => {
        bar ??= createProgress('Augmented records', total);
        bar.update(done);
      },
    });
  } finally {
    (bar as Progress | null)?.stop();
    process.removeListener('SIGINT', onSigint);
  }
  log(`${r.name}: ${r.records} records (${o.copies}${o.keepOriginal ? ' + 1 original' : ''} × ${r.sourceRecords}), augment ${o.augment}, seed ${o.seed}, ${r.workers > 0 ? `${r.workers} worker threads` : 'in-thread'}`);
  log(`  ${r.unlabelPath}`);
  log(`  ${r.labelPath}`);
  if (r.mapPath) log(`  ${r.mapPath}`);
  log(`  ${r.testPath}`);
  return r;
}
