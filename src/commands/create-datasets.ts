import type { Command } from 'commander';
import { UserError } from '../errors';
import { buildMnist, MNIST_DIVISION_DOC } from '../data/mnist';
import { baseDatasetFile, dataRoot } from '../data/paths';
import { createProgress, type Progress } from '../util/progress';

/** Builders by dataset name; each writes `<root>/<name>-<subset>.tfrecord` and skips existing sets unless forced. */
const BUILDERS: Record<string, typeof buildMnist> = { mnist: buildMnist };
export const SUPPORTED_DATASETS = Object.keys(BUILDERS);
const DEFAULT_DATASETS = ['mnist'];

export interface CreateDatasetsOptions {
  names: string[];
  dataDir: string;
  force: boolean;
}

export function parseCreateDatasetsOptions(names: string[], o: { dataDir?: string; force?: boolean }): CreateDatasetsOptions {
  const chosen = names.length > 0 ? [...new Set(names)] : DEFAULT_DATASETS;
  const unknown = chosen.filter((n) => !Object.prototype.hasOwnProperty.call(BUILDERS, n));
  if (unknown.length > 0) {
    throw new UserError(`unknown dataset ${unknown.map((n) => `'${n}'`).join(', ')}; supported: ${SUPPORTED_DATASETS.join(', ')}`);
  }
  return { names: chosen, dataDir: dataRoot(o.dataDir), force: Boolean(o.force) };
}

export async function createDatasets(opts: CreateDatasetsOptions, log: (line: string) => void = console.log): Promise<void> {
  for (const name of opts.names) {
    // created on the first report: only the builder knows how many images there are
    let progress: Progress | null = null;
    let result;
    try {
      result = await BUILDERS[name](opts.dataDir, {
        force: opts.force,
        onProgress: (done, total) => {
          progress ??= createProgress(`${name} images`, total);
          progress.update(done);
        },
      });
    } finally {
      // the cast: TypeScript does not see the assignment inside the callback and narrows to null
      (progress as Progress | null)?.stop();
    }
    if (result.skipped) {
      log(`Skipping already installed: ${name}`);
      continue;
    }
    log(`Wrote ${baseDatasetFile(opts.dataDir, name, 'train')} (${result.train} records)`);
    log(`Wrote ${baseDatasetFile(opts.dataDir, name, 'test')} (${result.test} records)`);
  }
}

export function register(program: Command): void {
  program
    .command('create-datasets')
    .summary('build base datasets as TFRecord files')
    .description(`build the base datasets as TFRecord files of tf.train.Example (image PNG, label int64) in the data root`)
    .argument('[names...]', `datasets to build: ${SUPPORTED_DATASETS.join(', ')} (default: ${DEFAULT_DATASETS.join(' ')})`)
    .option('--data-dir <dir>', 'data root (default: $ML_DATA, else ./data)')
    .option('--force', 'rebuild datasets whose files exist (default: skip them)')
    .addHelpText('after', `\n${MNIST_DIVISION_DOC}`)
    .action(async (names: string[], o: { dataDir?: string; force?: boolean }) => {
      await createDatasets(parseCreateDatasetsOptions(names, o));
    });
}
