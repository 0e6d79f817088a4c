import * as path from 'path';
import type { Command } from 'commander';
import { UserError } from '../errors';
import { filterDataset, FilterResult, OTHER_LABEL, parseClassList } from '../data/filter';
import { MISMATCH_PERCENTS, MISMATCH_UNLABELLED_CLASSES, mismatchPercent, mismatchSetting } from '../data/mismatch';
import { dataRoot } from '../data/paths';
import { createProgress, Progress } from '../util/progress';
import { intArg } from './parse';

export interface FilterCommandOptions {
  input: string;
  output: string;
  classes?: string;
  unlabelClasses?: string;
  mismatch?: number;
  remap: boolean;
  force: boolean;
  dataDir?: string;
}

function classSelection(o: FilterCommandOptions): { classes: number[]; unlabelClasses: number[] } {
  if (o.mismatch !== undefined) {
    if (o.classes !== undefined || o.unlabelClasses !== undefined) {
      throw new UserError('--mismatch sets the classes itself; pass either --mismatch or --classes/--unlabel-classes');
    }
    return mismatchSetting(o.mismatch);
  }
  if (o.classes === undefined) throw new UserError('pass --classes (e.g. --classes 2,3,4,5,6,7) or --mismatch');
  return {
    classes: parseClassList(o.classes, '--classes'),
    unlabelClasses: o.unlabelClasses === undefined ? [] : parseClassList(o.unlabelClasses, '--unlabel-classes'),
  };
}

function perClass(counts: Record<number, number>): string {
  const keys = Object.keys(counts).map(Number).sort((a, b) => a - b);
  return keys.length ? keys.map((k) => `${k}:${counts[k]}`).join(' ') : 'none';
}

export function runFilter(o: FilterCommandOptions, log: (line: string) => void = console.log): FilterResult {
  const sel = classSelection(o);
  let bar: Progress | null = null;
  let barFile = '';
  let r: FilterResult;
  try {
    r = filterDataset({
      root: dataRoot(o.dataDir),
      input: o.input,
      output: o.output,
      ...sel,
      remap: o.remap,
      force: o.force,
      onProgress: (p) => {
        if (p.file !== barFile) {
          bar?.stop();
          barFile = p.file;
          bar = createProgress(`Filtering ${path.basename(p.file)} (MiB)`, Math.max(1, Math.ceil(p.total / (1 << 20))));
        }
        bar?.update(Math.round(p.done / (1 << 20)));
      },
    });
  } finally {
    (bar as Progress | null)?.stop();
  }
  const unlabel = sel.unlabelClasses.length ? sel.unlabelClasses : sel.classes;
  const mismatch = mismatchPercent({ classes: sel.classes, unlabelClasses: unlabel });
  log(`Kept classes ${sel.classes.join(',')}` + (sel.unlabelClasses.length ? `; unlabelled: ${unlabel.join(',')} (${mismatch}% outside the labelled classes)` : ''));
  for (const f of r.files) {
    const note = f.unchanged ? ' (already there, unchanged)' : '';
    log(`  ${f.role}: ${f.read} -> ${f.written} records [${perClass(f.perClass)}]${note}`);
    log(`    ${f.output}`);
  }
  for (const f of r.skipped) log(`  not filtered (unlabelled, its labels are placeholders; --unlabel-classes filters it by them): ${f}`);
  if (r.mapPath) log(`  ${r.mapPath}`);
  if (r.remapPath) log(`  labels renumbered 0..${sel.classes.length - 1} in the order listed${mismatch > 0 ? `, other unlabelled classes ${OTHER_LABEL}` : ''}: ${r.remapPath}`);
  if (r.kind === 'split') log(`Train on it as ${r.name}-<valid>, e.g. ssl train --dataset ${r.name}-1`);
  return r;
}

export function register(program: Command): void {
  program
    .command('filter')
    .summary('keep only some classes of a file, dataset or split')
    .description(
      "keep the records of the listed classes, as RealMix's filter_dataset does, of one TFRecord file or of every file of a " +
        'dataset: a split (<name>.<seed>@<size>) gives <data-dir>/SSL/<output>.<seed>@<size>-{label,unlabel}.tfrecord ' +
        '(and -map.json when the source has one; positions still count in the source base file) plus ' +
        '<data-dir>/<output>-test.tfrecord, ready to train as <output>.<seed>@<size>-<valid>; a base dataset (<name>) gives ' +
        '<data-dir>/<output>-<subset>.tfrecord for each subset present; a file gives <output>.tfrecord beside it',
    )
    .requiredOption('--input <file|name>', 'a .tfrecord file, a base dataset (cifar10), a split (cifar10.1@250) or a training dataset (cifar10.1@250-5000) (required)')
    .requiredOption(
      '--output <name>',
      'output dataset name (e.g. cifar6); for a file input, a file name written beside the input as the original does, ' +
        'or a path (used as given; .tfrecord is added when missing) (required)',
    )
    .option('--classes <list>', 'classes to keep, comma-separated, e.g. 2,3,4,5,6,7 (required unless --mismatch)')
    .option('--unlabel-classes <list>', "classes to keep in a split's unlabelled file (default: --classes)")
    .option(
      '--mismatch <percent>',
      `the RealMix README's class-mismatch settings on CIFAR-10: labelled and test classes 2,3,4,5,6,7; unlabelled ` +
        MISMATCH_PERCENTS.map((p) => `${p}: ${MISMATCH_UNLABELLED_CLASSES[p].join(',')}`).join('; ') +
        ' (default: off)',
      intArg(0),
    )
    .option(
      '--remap',
      `renumber the kept classes 0..k-1 in the order listed and write <output>-remap.json beside the output; unlabelled records ` +
        `of classes outside --classes get label ${OTHER_LABEL} and are written after the others, so that the validation set ` +
        `(the head of the unlabelled file) holds labelled classes only (default: labels and order kept, as the original does)`,
      false,
    )
    .option('--data-dir <dir>', 'data root (default: $ML_DATA, else ./data)')
    .option('--force', 'overwrite existing outputs', false)
    .addHelpText(
      'after',
      '\nA split\'s test file and remap file are shared by every seed and size of <output>: when they exist with the same' +
        '\nrecords they are left as they are, so a loop over seeds needs no --force. Without --remap, labels stay as in the' +
        '\ninput (e.g. 2..7), and training sizes its classifier by the largest label it sees.',
    )
    .action((o: FilterCommandOptions) => {
      runFilter(o);
    });
}
