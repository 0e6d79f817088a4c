import * as fs from 'fs';
import * as path from 'path';
import type { Command } from 'commander';
import { UserError } from '../errors';
import { CIFAR_PYTHON_ARCHIVES, cifar100Builder, cifar10Builder } from '../data/cifar';
import { customBuilder, type CustomDatasetOptions, validateCustomOptions } from '../data/custom-dataset';
import { type BuildContext, type DatasetBuilder, filePool, type FilePool, resolveInput, type ResolvedInput } from '../data/dataset-inputs';
import type { WrittenFile } from '../data/dataset-output';
import type { RemoteFile } from '../data/download';
import { buildMnist, MNIST_DIVISION_DOC } from '../data/mnist';
import { baseDatasetFile, dataRoot } from '../data/paths';
import { stl10Builder } from '../data/stl10';
import { svhnBuilder, svhnNoExtraBuilder } from '../data/svhn';
import { createProgress, type Progress } from '../util/progress';
import { intArg } from './parse';

const mnistBuilder: DatasetBuilder = {
  name: 'mnist',
  formats: [],
  outputs: (root) => [baseDatasetFile(root, 'mnist', 'train'), baseDatasetFile(root, 'mnist', 'test')],
  async build(ctx) {
    let bar: Progress | null = null;
    try {
      const r = await buildMnist(ctx.root, {
        force: true,
        onProgress: (done, total) => {
          bar ??= ctx.progress('mnist images', total);
          bar.update(done);
        },
      });
      return [
        { path: baseDatasetFile(ctx.root, 'mnist', 'train'), records: r.train },
        { path: baseDatasetFile(ctx.root, 'mnist', 'test'), records: r.test },
      ];
    } finally {
      (bar as Progress | null)?.stop();
    }
  },
};

/** Built-in datasets, in the order they are built (svhn before svhn_noextra, which copies it). */
const BUILDERS: DatasetBuilder[] = [mnistBuilder, cifar10Builder, cifar100Builder, svhnBuilder, svhnNoExtraBuilder, stl10Builder];
const BUILTIN = BUILDERS.map((b) => b.name);
/** What the originals' create_datasets builds with no arguments, plus svhn_noextra (their README's copy). */
const ALL = ['cifar10', 'cifar100', 'svhn', 'svhn_noextra', 'stl10'];
export const SUPPORTED_DATASETS = [...BUILTIN, 'custom', 'all'];
const DEFAULT_DATASETS = ['mnist'];
export const DOWNLOADS_FOLDER = 'downloads';

export interface CreateDatasetsOptions {
  names: string[];
  dataDir: string;
  force: boolean;
  /** --from paths; empty: the download cache, then the network. */
  from: string[];
  custom?: CustomDatasetOptions;
}

export interface RawCreateDatasetsOptions {
  dataDir?: string;
  force?: boolean;
  from?: string[];
  name?: string;
  trainDir?: string;
  testDir?: string;
  unlabeledDir?: string;
  imgSize?: number;
}

const CUSTOM_FLAGS = [
  ['name', '--name'],
  ['trainDir', '--train-dir'],
  ['testDir', '--test-dir'],
  ['unlabeledDir', '--unlabeled-dir'],
  ['imgSize', '--img-size'],
] as const;

export function parseCreateDatasetsOptions(names: string[], o: RawCreateDatasetsOptions): CreateDatasetsOptions {
  const asked = names.length > 0 ? names : DEFAULT_DATASETS;
  const unknown = asked.filter((n) => !SUPPORTED_DATASETS.includes(n));
  if (unknown.length > 0) {
    throw new UserError(`unknown dataset ${unknown.map((n) => `'${n}'`).join(', ')}; supported: ${SUPPORTED_DATASETS.join(', ')}`);
  }
  const wanted = new Set(asked.flatMap((n) => (n === 'all' ? ALL : [n])));
  const chosen = [...BUILTIN, 'custom'].filter((n) => wanted.has(n));
  const opts: CreateDatasetsOptions = { names: chosen, dataDir: dataRoot(o.dataDir), force: Boolean(o.force), from: o.from ?? [] };
  if (wanted.has('custom')) {
    for (const [key, flag] of CUSTOM_FLAGS.slice(0, 3)) {
      if (o[key] === undefined) throw new UserError(`custom needs ${flag}: ssl create-datasets custom --name <name> --train-dir <dir> --test-dir <dir> [--unlabeled-dir <dir>]`);
    }
    opts.custom = {
      name: o.name as string,
      trainDir: path.resolve(o.trainDir as string),
      testDir: path.resolve(o.testDir as string),
      unlabeledDir: o.unlabeledDir === undefined ? undefined : path.resolve(o.unlabeledDir),
      imgSize: o.imgSize,
    };
    validateCustomOptions(opts.custom, SUPPORTED_DATASETS);
  } else {
    const stray = CUSTOM_FLAGS.find(([key]) => o[key] !== undefined);
    if (stray) throw new UserError(`${stray[1]} is for the custom dataset only: ssl create-datasets custom --name <name> --train-dir <dir> --test-dir <dir>`);
  }
  return opts;
}

/** File names --from may name directly: every dataset's downloads and the files inside its archives. */
function knownInputNames(): { downloads: string[]; all: Set<string> } {
  const downloads: string[] = [];
  const all = new Set<string>();
  for (const b of BUILDERS) {
    for (const f of b.formats) {
      f.members.forEach((m) => all.add(m));
      for (const r of [...(f.archive ? [f.archive] : []), ...(f.remotes ?? [])]) {
        all.add(r.file);
        if (!downloads.includes(r.file)) downloads.push(r.file);
      }
    }
  }
  return { downloads, all };
}

function checkFromFiles(from: string[]): void {
  const known = knownInputNames();
  for (const p of from) {
    if (!fs.existsSync(p)) throw new UserError(`--from ${p}: no such file or folder`);
    if (fs.statSync(p).isDirectory()) continue;
    const base = path.basename(p);
    if (CIFAR_PYTHON_ARCHIVES.includes(base)) {
      throw new UserError(
        `--from ${p}: the Python (pickle) version of CIFAR is not read; use ${base.replace('python', 'binary')} or ${base.replace('python', 'matlab')}`,
      );
    }
    if (!known.all.has(base)) {
      throw new UserError(`--from ${p}: not a file create-datasets reads; expected one of ${known.downloads.join(', ')}, a file extracted from them, or a folder`);
    }
  }
}

export interface CreateDatasetsDeps {
  progress?: (label: string, total: number) => Progress;
  /** Replaces downloads (tests). */
  fetch?: (remote: RemoteFile, dir: string) => Promise<string>;
}

function describe(f: WrittenFile): string {
  if (f.records !== undefined) return `Wrote ${f.path} (${f.records} records${f.copyOf ? `, a copy of ${path.basename(f.copyOf)}` : ''})`;
  if (f.copyOf) return `Wrote ${f.path} (a copy of ${path.basename(f.copyOf)})`;
  return `Wrote ${f.path}`;
}

/**
 * Builds each dataset, all of its files or none. Datasets whose files all exist are skipped unless
 * `force`. With --from, every dataset's sources are found before the first is built, so a missing
 * one fails at once; datasets finished before a later one fails are kept.
 */
export async function createDatasets(
  opts: CreateDatasetsOptions,
  log: (line: string) => void = console.log,
  deps: CreateDatasetsDeps = {},
): Promise<void> {
  const ctx: BuildContext = {
    root: opts.dataDir,
    force: opts.force,
    from: opts.from,
    downloadDir: path.join(opts.dataDir, DOWNLOADS_FOLDER),
    progress: deps.progress ?? ((label, total) => createProgress(label, total)),
    log,
    fetch: deps.fetch,
  };
  // the fixed order, whatever order they were named in: svhn_noextra copies what svhn writes
  const names = [...BUILTIN, 'custom'].filter((n) => opts.names.includes(n));
  const builders = names.map((n) => (n === 'custom' ? customBuilder(opts.custom as CustomDatasetOptions) : (BUILDERS.find((b) => b.name === n) as DatasetBuilder)));
  const installed = (b: DatasetBuilder): boolean => !opts.force && b.outputs(ctx.root).every((f) => fs.existsSync(f));

  const inputs = new Map<string, ResolvedInput>();
  if (opts.from.length > 0) {
    checkFromFiles(opts.from);
    let pool: FilePool | undefined;
    const planned: string[] = [];
    for (const b of builders) {
      if (installed(b)) continue;
      if (b.formats.length > 0 && (b.needsInput?.(ctx, planned) ?? true)) {
        pool ??= filePool(opts.from);
        inputs.set(b.name, await resolveInput(b.name, b.formats, ctx, pool));
      }
      planned.push(b.name);
    }
  }

  fs.mkdirSync(ctx.root, { recursive: true });
  for (const b of builders) {
    if (installed(b)) {
      log(`Skipping already installed: ${b.name}`);
      continue;
    }
    let input: ResolvedInput | null = inputs.get(b.name) ?? null;
    if (!input && b.formats.length > 0 && (b.needsInput?.(ctx, []) ?? true)) input = await resolveInput(b.name, b.formats, ctx);
    const files = await b.build(ctx, input);
    for (const f of files) log(describe(f));
  }
}

const SOURCES_DOC = [
  'Sources: cifar10, cifar100: the binary or MATLAB archives of',
  'https://www.cs.toronto.edu/~kriz/cifar.html (CIFAR-100: fine labels);',
  'svhn: train_32x32.mat, test_32x32.mat, extra_32x32.mat of',
  'http://ufldl.stanford.edu/housenumbers/ (labels 1..10 stored as 0..9);',
  'svhn_noextra: svhn-train/test copied under that name; stl10:',
  'http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz, plus',
  '<data-dir>/stl10_fold_indices.txt (unlabelled images get label 0).',
  'Downloads are checked (length; md5 where published), resumed when',
  `interrupted, and kept in <data-dir>/${DOWNLOADS_FOLDER}/ (delete it to reclaim`,
  'space). Offline: --from <archive, .mat file or folder>, repeatable.',
  '',
  'custom: images under --train-dir/--test-dir (PNG/JPEG); class = the',
  'sub-folder name, or <class> in a <n>_<class>.<ext> file name; labels',
  'index the sorted train class names, saved to <name>_class_mappings.json.',
  'Images are interleaved by class; --img-size resizes (stretch, Lanczos).',
].join('\n');

export function register(program: Command): void {
  program
    .command('create-datasets')
    .summary('build base datasets as TFRecord files')
    .description(
      'build the base datasets as TFRecord files of tf.train.Example (image PNG, label int64) in the data root: ' +
        '<data-dir>/<name>-<subset>.tfrecord; a dataset is written whole or not at all',
    )
    .argument(
      '[names...]',
      `datasets to build: ${BUILTIN.join(', ')}, all (= ${ALL.join(' ')}), custom (default: ${DEFAULT_DATASETS.join(' ')})`,
    )
    .option('--data-dir <dir>', 'data root (default: $ML_DATA, else ./data)')
    .option('--force', 'rebuild datasets whose files exist (default: skip them)')
    .option(
      '--from <path>',
      'a published archive or .mat file, or a folder holding them or their extracted files; repeatable. ' +
        `Nothing is downloaded then (default: <data-dir>/${DOWNLOADS_FOLDER}/, else download)`,
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option('--name <name>', 'custom: name of the dataset (required with custom)')
    .option('--train-dir <dir>', 'custom: folder of labelled training images (required with custom)')
    .option('--test-dir <dir>', 'custom: folder of labelled test images (required with custom)')
    .option('--unlabeled-dir <dir>', 'custom: folder of unlabelled images, written to <name>-unlabel.tfrecord with label 0 (default: none)')
    .option('--img-size <n>', 'custom: resize every image to <n> x <n> (default: keep the size all images share)', intArg(1))
    .addHelpText('after', `\n${MNIST_DIVISION_DOC}\n\n${SOURCES_DOC}`)
    .action(async (names: string[], o: RawCreateDatasetsOptions) => {
      await createDatasets(parseCreateDatasetsOptions(names, o));
    });
}
