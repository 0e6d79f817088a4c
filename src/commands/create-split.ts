import * as path from 'path';
import { Command } from 'commander';
import { createSplit, CreateSplitResult, FOLD_INDICES_FILE, SplitProgress } from '../data/create-split';
import { dataRoot } from '../data/paths';
import { createProgress, Progress } from '../util/progress';
import { intArg } from './parse';

export interface CreateSplitCommandOptions {
  dataset: string;
  seed: number;
  size: number;
  /** Base TFRecord files; empty means the dataset's default inputs. */
  inputs: string[];
  dataDir?: string;
  force: boolean;
  labelSize?: number;
  classBalance: boolean;
  /** A file path, false for --no-unlabel-file, undefined for the default. */
  unlabelFile?: string | false;
}

export function register(program: Command): void {
  program
    .command('create-split')
    .summary('cut a seeded labelled/unlabelled split')
    .description(
      'pick a seeded labelled subset, as the reference create_split does: writes ' +
        '<data-dir>/SSL/<dataset>.<seed>@<size>-label.tfrecord, -unlabel.tfrecord and -map.json',
    )
    .argument(
      '[inputs...]',
      'base TFRecord files, read as one sequence (default: <data-dir>/<dataset>-train.tfrecord; ' +
        'svhn: svhn-train + svhn-extra; svhn_noextra: svhn-train; stl10: stl10-train + stl10-unlabeled)',
    )
    .requiredOption('--dataset <name>', 'name of the split files, e.g. cifar10 (required)')
    .requiredOption('--size <n>', 'number of labelled records (required, at least 1)', intArg(1))
    .option('--seed <n>', 'seed of the per-class shuffles; 0 keeps file order, as the reference does', intArg(0), 0)
    .option('--data-dir <dir>', 'data root (default: $ML_DATA, else ./data)')
    .option('--force', 'overwrite an existing split of the same name', false)
    .option(
      '--label-size <n>',
      'RealMix --custom: only the first <n> records are labelled, may be picked, and set the class ' +
        'weights (default: off, every record counts)',
      intArg(1),
    )
    .option('--class-balance', 'pick labelled records round-robin over classes instead of following the class frequencies (RealMix --class_balance)', false)
    .option(
      '--unlabel-file <file>',
      'unlabelled images that join the unlabelled side only, after the inputs, as RealMix custom_extra appends them ' +
        '(default: <data-dir>/<dataset>-unlabel.tfrecord when it exists and no inputs are given)',
    )
    .option('--no-unlabel-file', 'do not join <data-dir>/<dataset>-unlabel.tfrecord')
    .addHelpText(
      'after',
      `\nSTL-10 (first input named stl10*): class weights are all 1, and at --size 1000 the labelled set is line <seed> of <data-dir>/${FOLD_INDICES_FILE}.` +
        '\nCustom datasets: with an unlabelled file, only the inputs\' records (the first --label-size of them, if given) may be labelled' +
        '\nand set the class weights, as RealMix --custom does; unlabelled records whose label is not a class (e.g. -1) go last,' +
        '\nafter the class-interleaved records, so they never reach the validation head. Positions in -map.json count the' +
        '\nunlabelled file\'s records after the inputs\'.',
    )
    .action(async (inputs: string[], o: Omit<CreateSplitCommandOptions, 'inputs'>) => {
      await runCreateSplit({ ...o, inputs });
    });
}

/** Phase-by-phase progress bars over createSplit's progress events. */
function progressReporter(): { onProgress: (p: SplitProgress) => void; stop: () => void } {
  let phase: SplitProgress['phase'] | null = null;
  let bar: Progress | null = null;
  const MiB = 1 << 20;
  return {
    onProgress(p) {
      if (p.phase !== phase) {
        bar?.stop();
        phase = p.phase;
        bar = p.phase === 'scan' ? createProgress('Reading labels (MiB)', Math.ceil(p.total / MiB)) : createProgress('Writing records', p.total);
      }
      bar?.update(p.phase === 'scan' ? Math.round(p.done / MiB) : p.done);
    },
    stop() {
      bar?.stop();
    },
  };
}

export async function runCreateSplit(
  o: CreateSplitCommandOptions,
  log: (line: string) => void = (l) => console.log(l),
): Promise<CreateSplitResult> {
  const progress = progressReporter();
  let r: CreateSplitResult;
  try {
    r = await createSplit({
      root: dataRoot(o.dataDir),
      dataset: o.dataset,
      seed: o.seed,
      size: o.size,
      inputs: o.inputs,
      force: o.force,
      labelSize: o.labelSize,
      classBalance: o.classBalance,
      unlabelFile: o.unlabelFile,
      onProgress: progress.onProgress,
    });
  } finally {
    progress.stop();
  }
  const name = path.basename(r.mapPath).replace(/-map\.json$/, '');
  log(`Split ${name}: ${r.labelCount} labelled, ${r.unlabelCount} unlabelled, ${r.nclass} classes`);
  log(`  labelled per class: ${r.labelCounts.join(' ')}`);
  if (r.unlabelFile) log(`  unlabelled only: ${r.unlabelFileRecords} records of ${r.unlabelFile}`);
  log(`  ${r.labelPath}`);
  log(`  ${r.unlabelPath}`);
  log(`  ${r.mapPath}`);
  return r;
}
