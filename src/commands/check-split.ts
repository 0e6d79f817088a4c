import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { UserError } from '../errors';
import { checkSplit, CheckSplitReport, formatCheckSplit, HashMode } from '../data/check-split';
import { dataRoot } from '../data/paths';
import { createProgress, Progress } from '../util/progress';

export interface CheckSplitCommandOptions {
  dataset: string;
  hash: HashMode;
  json: boolean;
  allowOverlap: boolean;
  dataDir?: string;
}

function hashArg(v: string): HashMode {
  if (v !== 'pixels' && v !== 'png') throw new InvalidArgumentError('expected pixels or png.');
  return v;
}

/** Prints the report; throws (exit 1) when two sets share an image, unless allowOverlap. */
export async function runCheckSplit(o: CheckSplitCommandOptions, log: (line: string) => void = console.log): Promise<CheckSplitReport> {
  let bar: Progress | null = null;
  let role = '';
  let r: CheckSplitReport;
  try {
    r = await checkSplit({
      root: dataRoot(o.dataDir),
      dataset: o.dataset,
      hash: o.hash,
      onProgress: (p) => {
        if (p.role !== role) {
          bar?.stop();
          role = p.role;
          bar = createProgress(`Hashing ${p.role} images`, p.total);
        }
        if (p.done % 256 === 0 || p.done === p.total) bar?.update(p.done);
      },
    });
  } finally {
    (bar as Progress | null)?.stop();
  }
  if (o.json) log(JSON.stringify(r, null, 2));
  else for (const line of formatCheckSplit(r)) log(line);
  if (r.totalOverlap > 0 && !o.allowOverlap) {
    const pairs = r.overlaps.filter((x) => x.images > 0).map((x) => `${x.a}/${x.b} ${x.images}`);
    throw new UserError(`${o.dataset}: sets share images (${pairs.join(', ')}); pass --allow-overlap to report without failing`);
  }
  return r;
}

export function register(program: Command): void {
  program
    .command('check-split')
    .summary('find images shared by the labelled, unlabelled, validation and test sets')
    .description(
      'hash every image of a split (SHA-512, as the original check_split) and report how many distinct images each pair of ' +
        'sets shares: labelled, unlabelled and test for a split name; also validation (the first <valid> unlabelled records) ' +
        'for a training name. Exits with status 1 when any two sets share an image (unless --allow-overlap); images repeated ' +
        'within one set are reported but do not fail the check',
    )
    .argument('<dataset>', 'a split (cifar10.1@250) or a training dataset (cifar10.1@250-5000)')
    .option(
      '--hash <what>',
      'pixels: hash the decoded pixels and shape, so re-encoded copies of an image still match; png: hash the stored ' +
        'image bytes, faster, finds byte-identical copies only',
      hashArg,
      'pixels',
    )
    .option('--json', 'print the report as JSON', false)
    .option('--allow-overlap', 'exit 0 even when sets share images', false)
    .option('--data-dir <dir>', 'data root (default: $ML_DATA, else ./data)')
    .action(async (dataset: string, o: Omit<CheckSplitCommandOptions, 'dataset'>) => {
      await runCheckSplit({ ...o, dataset });
    });
}
