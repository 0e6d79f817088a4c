import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import type { ImageShape } from '../data/augment';
import { decodeImageExample } from '../data/example';
import { decodeImage, type DecodedImage } from '../data/png';
import { parseTrainDatasetName } from '../data/dataset-name';
import { describeCorrupt, readRecordEntries, type CorruptRecord, type RecordEntry } from '../data/tfrecord';

/** Decoded images of one file, held in memory as the originals' memoized datasets are. */
export interface ImageSet {
  images: Uint8Array; // count * H * W * C
  labels: Int32Array;
  count: number;
  shape: ImageShape;
}

export interface TrainingData {
  /** The display name, as the originals use in the run path. */
  name: string;
  /** Base dataset family (cifar10, mnist, ...), for the default augmentation. */
  base: string;
  labeled: ImageSet;
  unlabeled: ImageSet | null;
  valid: ImageSet;
  test: ImageSet;
  nclass: number;
  shape: ImageShape;
}

export function imageSize(s: ImageShape): number {
  return s.height * s.width * s.channels;
}

export interface LoadImageOptions {
  skip?: number;
  limit?: number;
  /** Go on past damaged records (bad framing or CRC, an undecodable Example or image), telling onCorrupt. */
  skipCorrupt?: boolean;
  onCorrupt?: (c: CorruptRecord) => void;
}

/**
 * Only `skip`..`skip+limit` are decoded; a damaged record names the file, record index and byte
 * offset, and with skipCorrupt is left out (the set is that much smaller) and reported.
 */
export async function loadImageSet(file: string, opts: LoadImageOptions = {}): Promise<ImageSet> {
  const skip = opts.skip ?? 0;
  const limit = opts.limit ?? Infinity;
  const picked: RecordEntry[] = [];
  let i = 0;
  for (const e of readRecordEntries(file, { skipCorrupt: opts.skipCorrupt, onCorrupt: opts.onCorrupt })) {
    if (i >= skip && picked.length < limit) picked.push(e);
    i++;
    if (picked.length >= limit) break;
  }
  const kept: Array<{ entry: RecordEntry; label: number; img: DecodedImage }> = [];
  const CHUNK = 256;
  for (let start = 0; start < picked.length; start += CHUNK) {
    const decoded = await Promise.all(
      picked.slice(start, start + CHUNK).map(async (entry) => {
        try {
          const ex = decodeImageExample(entry.data);
          return { entry, label: ex.label, img: await decodeImage(ex.image) };
        } catch (e) {
          const c: CorruptRecord = { file, index: entry.index, offset: entry.offset, reason: `cannot be decoded: ${(e as Error).message}`, bytes: entry.data.length + 16 };
          if (!opts.skipCorrupt) throw new UserError(`${describeCorrupt(c)}; recreate the file, or pass --skip-corrupt to read past it`);
          opts.onCorrupt?.(c);
          return null;
        }
      }),
    );
    for (const d of decoded) if (d) kept.push(d);
  }
  const labels = new Int32Array(kept.length);
  let shape: ImageShape | null = null;
  let images = new Uint8Array(0);
  kept.forEach(({ entry, label, img }, k) => {
    if (!shape) {
      shape = { height: img.height, width: img.width, channels: img.channels };
      images = new Uint8Array(kept.length * imageSize(shape));
    } else if (img.height !== shape.height || img.width !== shape.width || img.channels !== shape.channels) {
      throw new UserError(
        `${file}: record ${entry.index} is ${img.height}x${img.width}x${img.channels}, others are ` +
          `${shape.height}x${shape.width}x${shape.channels}; every image of a dataset must share one size`,
      );
    }
    images.set(img.data, k * imageSize(shape));
    labels[k] = label;
  });
  return { images, labels, count: kept.length, shape: shape ?? { height: 0, width: 0, channels: 0 } };
}

/** How a base dataset is made: a built-in one by name, your own images with `custom`. */
function createDatasetsHint(base: string): string {
  return `ssl create-datasets ${base} (or, for your own images, ssl create-datasets custom --name ${base} --train-dir DIR --test-dir DIR)`;
}

function requireFile(file: string, howToMake: string): void {
  if (!fs.existsSync(file)) throw new UserError(`missing dataset file ${file}; create it with: ${howToMake}`);
}

/** `<name>-<valid>`: the fully-supervised grammar (whole train set, first <valid> records held out). */
const FULLY_SUPERVISED = /^([A-Za-z0-9_]+)-(\d+)$/;

export function isFullySupervisedName(dataset: string): boolean {
  return FULLY_SUPERVISED.test(dataset);
}

/**
 * Loads a training dataset by its name: `<name>.<seed>@<labelled>-<valid>` (labelled split file,
 * unlabelled file minus its first <valid> records, which are the validation set, and the base
 * test file), or `<name>-<valid>` for fully-supervised training on the whole train set.
 */
export interface LoadOptions {
  /** Load the unlabelled images (algorithms that use them). */
  unlabeled: boolean;
  skipCorrupt?: boolean;
  /** Told of each damaged record skipped (once per record, though a file may be read twice). */
  onCorrupt?: (c: CorruptRecord) => void;
  /** The class count when it is known (from a class mapping); otherwise the largest label + 1. */
  nclass?: number;
}

export async function loadTrainingData(root: string, dataset: string, opts: LoadOptions): Promise<TrainingData> {
  // the unlabelled file is read twice (validation, then the rest): report each damaged record once
  const reported = new Set<string>();
  const onCorrupt = (c: CorruptRecord): void => {
    const key = `${c.file}\0${c.offset}`;
    if (!reported.has(key)) {
      reported.add(key);
      opts.onCorrupt?.(c);
    }
  };
  const full = FULLY_SUPERVISED.exec(dataset);
  let labeled: ImageSet;
  let unlabeled: ImageSet | null = null;
  let valid: ImageSet;
  let base: string;
  let testName: string;
  if (full) {
    const name = full[1];
    const v = Number(full[2]);
    base = name;
    testName = name;
    const train = path.join(root, `${name}-train.tfrecord`);
    requireFile(train, createDatasetsHint(name));
    valid = await loadImageSet(train, { limit: v, skipCorrupt: opts.skipCorrupt, onCorrupt });
    labeled = await loadImageSet(train, { skip: v, skipCorrupt: opts.skipCorrupt, onCorrupt });
  } else {
    const p = parseTrainDatasetName(dataset);
    base = p.base;
    testName = p.name;
    const prefix = path.join(root, 'SSL', `${p.name}.${p.seed}@${p.size}`);
    const make = p.augCopies
      ? `ssl aug-copy --dataset ${p.base}.${p.seed}@${p.size} --copies ${p.augCopies}`
      : `ssl create-split --dataset ${p.name} --seed ${p.seed} --size ${p.size}`;
    // An augmented-copies dataset (<base>_aug<N>) holds only augmented unlabelled records: its
    // unlabelled side (and so its validation records) are the copies; labelled images and the
    // test set come from the base split when the copy step did not write its own.
    const labelFile = p.augCopies ? firstExisting(`${prefix}-label.tfrecord`, path.join(root, 'SSL', `${p.base}.${p.seed}@${p.size}-label.tfrecord`)) : `${prefix}-label.tfrecord`;
    requireFile(labelFile, make);
    requireFile(`${prefix}-unlabel.tfrecord`, make);
    labeled = await loadImageSet(labelFile, { skipCorrupt: opts.skipCorrupt, onCorrupt });
    valid = await loadImageSet(`${prefix}-unlabel.tfrecord`, { limit: p.valid, skipCorrupt: opts.skipCorrupt, onCorrupt });
    if (opts.unlabeled) unlabeled = await loadImageSet(`${prefix}-unlabel.tfrecord`, { skip: p.valid, skipCorrupt: opts.skipCorrupt, onCorrupt });
    if (p.augCopies && !fs.existsSync(path.join(root, `${testName}-test.tfrecord`))) testName = p.base;
  }
  const testFile = path.join(root, `${testName}-test.tfrecord`);
  requireFile(testFile, createDatasetsHint(base));
  const test = await loadImageSet(testFile, { skipCorrupt: opts.skipCorrupt, onCorrupt });
  if (labeled.count === 0) throw new UserError(`dataset ${dataset} has no labelled images`);
  if (opts.unlabeled && unlabeled && unlabeled.count === 0) {
    throw new UserError(`dataset ${dataset} has no unlabelled images left after the ${valid.count} validation records; use a smaller <valid>`);
  }
  const shape = labeled.shape;
  for (const [what, s] of [['test', test], ['unlabelled', unlabeled]] as const) {
    if (s && s.count > 0 && imageSize(s.shape) !== imageSize(shape)) {
      throw new UserError(`dataset ${dataset}: ${what} images are ${s.shape.height}x${s.shape.width}x${s.shape.channels} but labelled ones are ${shape.height}x${shape.width}x${shape.channels}`);
    }
  }
  const named: Array<[string, ImageSet]> = [['labelled', labeled], ['validation', valid], ['test', test]];
  let maxLabel = 0;
  for (const [, s] of named) for (const l of s.labels) maxLabel = Math.max(maxLabel, l);
  const nclass = opts.nclass ?? maxLabel + 1;
  for (const [what, s] of named) checkLabels(s, nclass, `dataset ${dataset}: ${what} image`, opts.nclass !== undefined);
  return { name: dataset, base, labeled, unlabeled, valid, test, nclass, shape };
}

function firstExisting(...files: string[]): string {
  return files.find((f) => fs.existsSync(f)) ?? files[0];
}

/**
 * Refuses a label outside 0..nclass-1: one-hot encoding would turn it into an all-zero target and
 * the run would train on nothing for that image without a word.
 */
export function checkLabels(set: Pick<ImageSet, 'labels'>, nclass: number, what: string, fromMapping: boolean): void {
  for (let i = 0; i < set.labels.length; i++) {
    const l = set.labels[i];
    if (l < 0 || l >= nclass) {
      const why = fromMapping ? `the class mapping names ${nclass} classes` : 'labels must be non-negative class indices';
      throw new UserError(`${what} ${i} has label ${l}, outside 0..${nclass - 1} (${why}); fix the records or the class mapping`);
    }
  }
}

/**
 * A class-mapping file: RealMix's `<name>_class_mappings.json`, an object {"0": "cat", "1": "dog", ...}
 * (or a plain array of names). Returns the names in label order.
 */
export function readClassMapping(file: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read --class-mapping ${file}: ${code ?? (e as Error).message.replace(/[\u0000-\u001f\u007f]+/g, ' ')}`);
  }
  const bad = (why: string) => new UserError(`--class-mapping ${file}: ${why}; expected {"0": "<class 0>", "1": "<class 1>", ...}`);
  if (Array.isArray(parsed)) {
    if (parsed.length === 0 || !parsed.every((v) => typeof v === 'string')) throw bad('the array must hold class names');
    return parsed as string[];
  }
  if (!parsed || typeof parsed !== 'object') throw bad('not a JSON object');
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length === 0) throw bad('it is empty');
  const names: string[] = new Array(entries.length);
  for (const [k, v] of entries) {
    if (!/^(0|[1-9][0-9]*)$/.test(k) || Number(k) >= entries.length) throw bad(`key "${k}" is not a label in 0..${entries.length - 1}`);
    if (typeof v !== 'string') throw bad(`the name of class ${k} is not a string`);
    names[Number(k)] = v;
  }
  return names;
}
