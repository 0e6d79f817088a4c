import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import type { ImageShape } from '../data/augment';
import { decodeImageExample } from '../data/example';
import { decodeImage } from '../data/png';
import { parseTrainDatasetName } from '../data/dataset-name';
import { readRecords } from '../data/tfrecord';

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

/** Only `skip`..`skip+limit` are decoded; a decode failure names the file and record. */
export async function loadImageSet(file: string, opts: { skip?: number; limit?: number; skipCorrupt?: boolean } = {}): Promise<ImageSet> {
  const skip = opts.skip ?? 0;
  const limit = opts.limit ?? Infinity;
  const raw: Uint8Array[] = [];
  let i = 0;
  for (const rec of readRecords(file, { skipCorrupt: opts.skipCorrupt })) {
    if (i >= skip && raw.length < limit) raw.push(rec);
    i++;
    if (raw.length >= limit) break;
  }
  const labels = new Int32Array(raw.length);
  let shape: ImageShape | null = null;
  let images = new Uint8Array(0);
  const CHUNK = 256;
  for (let start = 0; start < raw.length; start += CHUNK) {
    const part = raw.slice(start, start + CHUNK);
    const decoded = await Promise.all(
      part.map(async (r, j) => {
        try {
          const ex = decodeImageExample(r);
          return { label: ex.label, img: await decodeImage(ex.image) };
        } catch (e) {
          throw new UserError(`${file}: record ${skip + start + j} cannot be decoded (${(e as Error).message}); recreate the file`);
        }
      }),
    );
    for (let j = 0; j < decoded.length; j++) {
      const { label, img } = decoded[j];
      if (!shape) {
        shape = { height: img.height, width: img.width, channels: img.channels };
        images = new Uint8Array(raw.length * imageSize(shape));
      } else if (img.height !== shape.height || img.width !== shape.width || img.channels !== shape.channels) {
        throw new UserError(
          `${file}: record ${skip + start + j} is ${img.height}x${img.width}x${img.channels}, others are ` +
            `${shape.height}x${shape.width}x${shape.channels}; every image of a dataset must share one size`,
        );
      }
      images.set(img.data, (start + j) * imageSize(shape));
      labels[start + j] = label;
    }
  }
  return { images, labels, count: raw.length, shape: shape ?? { height: 0, width: 0, channels: 0 } };
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
export async function loadTrainingData(root: string, dataset: string, opts: { unlabeled: boolean; skipCorrupt?: boolean }): Promise<TrainingData> {
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
    requireFile(train, `ssl create-datasets ${name}`);
    valid = await loadImageSet(train, { limit: v, skipCorrupt: opts.skipCorrupt });
    labeled = await loadImageSet(train, { skip: v, skipCorrupt: opts.skipCorrupt });
  } else {
    const p = parseTrainDatasetName(dataset);
    base = p.base;
    testName = p.name;
    const prefix = path.join(root, 'SSL', `${p.name}.${p.seed}@${p.size}`);
    const make = p.augCopies
      ? `ssl aug-copy --dataset ${p.base}.${p.seed}@${p.size} --copies ${p.augCopies}`
      : `ssl create-split --dataset ${p.name} --seed ${p.seed} --size ${p.size}`;
    requireFile(`${prefix}-label.tfrecord`, make);
    requireFile(`${prefix}-unlabel.tfrecord`, make);
    labeled = await loadImageSet(`${prefix}-label.tfrecord`, { skipCorrupt: opts.skipCorrupt });
    valid = await loadImageSet(`${prefix}-unlabel.tfrecord`, { limit: p.valid, skipCorrupt: opts.skipCorrupt });
    if (opts.unlabeled) unlabeled = await loadImageSet(`${prefix}-unlabel.tfrecord`, { skip: p.valid, skipCorrupt: opts.skipCorrupt });
  }
  const testFile = path.join(root, `${testName}-test.tfrecord`);
  requireFile(testFile, `ssl create-datasets ${base}`);
  const test = await loadImageSet(testFile, { skipCorrupt: opts.skipCorrupt });
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
  let maxLabel = 0;
  for (const s of [labeled, test, valid]) for (const l of s.labels) maxLabel = Math.max(maxLabel, l);
  return { name: dataset, base, labeled, unlabeled, valid, test, nclass: maxLabel + 1, shape };
}
