import * as fs from 'fs';
import { UserError } from '../errors';
import type { Progress } from '../util/progress';
import type { BuildContext, DatasetBuilder, InputFormat, ResolvedInput } from './dataset-inputs';
import { DatasetOutput, pacer, withDatasetOutput, type WrittenFile } from './dataset-output';
import { MatFile } from './mat5';
import { baseDatasetFile } from './paths';
import { columnMajorToHwc, forEachImage } from './pixel-layout';

/**
 * SVHN (cropped digits) from http://ufldl.stanford.edu/housenumbers/: train_32x32.mat (73,257),
 * test_32x32.mat (26,032) and extra_32x32.mat (531,131), MATLAB -v7 files (zlib-compressed
 * elements). `X` is a 32×32×3×N uint8 array, column-major, so each image is one contiguous run of
 * 3,072 bytes and the 1.6 GB of extra images are converted as they are inflated. `y` holds the
 * digits as 1..10, with 10 meaning the digit 0; they are stored as 0..9 (label = y − 1, so the
 * digit 0 gets label 9, as in the originals).
 *
 * svhn_noextra (the originals' SVHN without the extra set) is svhn's train and test files under
 * that name, copied from svhn-train/test.tfrecord (built first from the two .mat files when they
 * are missing); its splits are cut from svhn-train.tfrecord alone.
 */

const BASE_URL = 'http://ufldl.stanford.edu/housenumbers';

/** File and md5 of each subset, as the SVHN page publishes them. */
const SOURCES = {
  train: ['train_32x32.mat', 'e26dedcc434d2e4c54c9b2d4a06d8373'],
  test: ['test_32x32.mat', 'eb5a983be6a315427106f1b164d9cef3'],
  extra: ['extra_32x32.mat', 'a93ce644f1a588dc4d68dda5feec44a7'],
} as const;
type Subset = keyof typeof SOURCES;

function format(subsets: Subset[]): InputFormat {
  return {
    format: 'mat',
    members: subsets.map((s) => SOURCES[s][0]),
    remotes: subsets.map((s) => ({ file: SOURCES[s][0], url: `${BASE_URL}/${SOURCES[s][0]}`, md5: SOURCES[s][1] })),
  };
}

interface SvhnFile {
  mat: MatFile;
  height: number;
  width: number;
  channels: number;
  count: number;
}

/** Opens a .mat file and checks it holds SVHN's `X` (H×W×C×N) and `y` (N labels). */
export async function openSvhnMat(file: string): Promise<SvhnFile> {
  const mat = await MatFile.open(file);
  const dims = mat.variable('X').dims;
  if (dims.length !== 4 || (dims[2] !== 3 && dims[2] !== 1) || dims[0] === 0 || dims[1] === 0) {
    throw new UserError(`${file}: variable 'X' is ${dims.join('x')}, expected H x W x 3 x N images`);
  }
  const count = dims[3];
  if (mat.numel('y') !== count) throw new UserError(`${file}: variable 'y' holds ${mat.numel('y')} labels for ${count} images`);
  return { mat, height: dims[0], width: dims[1], channels: dims[2], count };
}

/** The labels of an SVHN file as 0..9 (y − 1). */
export async function svhnLabels(f: SvhnFile): Promise<Uint8Array> {
  const y = await f.mat.readNumbers('y');
  const out = new Uint8Array(y.length);
  y.forEach((v, i) => {
    if (!(Number.isInteger(v) && v >= 1 && v <= 10)) {
      throw new UserError(`${f.mat.label}: label ${i} is ${v}, but SVHN labels are 1..10; is it the right file?`);
    }
    out[i] = v - 1;
  });
  return out;
}

/** Converts one .mat file into `<stem>.tfrecord`, streaming its images. */
async function writeSvhnFile(out: DatasetOutput, stem: string, f: SvhnFile, tick: () => Promise<void>): Promise<void> {
  const labels = await svhnLabels(f);
  const { height: h, width: w, channels: c } = f;
  const px = new Uint8Array(h * w * c);
  let i = 0;
  const r = await forEachImage(f.mat.streamUint8('X'), h * w * c, async (src, off) => {
    if (i >= f.count) throw new UserError(`${f.mat.label}: variable 'X' holds more than its ${f.count} images`);
    out.writeImage(stem, columnMajorToHwc(src, off, h, w, c, px), h, w, c, labels[i]);
    i++;
    await tick();
  });
  if (r.count !== f.count || r.leftover !== 0) throw new UserError(`${f.mat.label}: variable 'X' holds ${r.count} whole images, expected ${f.count}`);
}

/** Converts the given subsets' .mat files (opened and checked first, so a bad last file fails early). */
async function convert(ctx: BuildContext, input: ResolvedInput, name: string, subsets: Subset[], out: DatasetOutput): Promise<void> {
  const files: SvhnFile[] = [];
  for (const s of subsets) files.push(await openSvhnMat(input.files.get(SOURCES[s][0]) as string));
  const total = files.reduce((a, f) => a + f.count, 0);
  const bar: Progress = ctx.progress(`${name} images`, total);
  let done = 0;
  const pace = pacer();
  const tick = async (): Promise<void> => {
    done++;
    if (done % 100 === 0 || done === total) bar.update(done);
    await pace();
  };
  try {
    for (let k = 0; k < subsets.length; k++) await writeSvhnFile(out, `svhn-${subsets[k]}`, files[k], tick);
  } finally {
    bar.stop();
  }
}

export const svhnBuilder: DatasetBuilder = {
  name: 'svhn',
  formats: [format(['train', 'test', 'extra'])],
  outputs: (root) => (['train', 'test', 'extra'] as const).map((s) => baseDatasetFile(root, 'svhn', s)),
  build: (ctx, input) => withDatasetOutput(ctx.root, 'svhn', (out) => convert(ctx, input as ResolvedInput, 'svhn', ['train', 'test', 'extra'], out)),
};

const SVHN_TRAIN_TEST = ['train', 'test'] as const;

export const svhnNoExtraBuilder: DatasetBuilder = {
  name: 'svhn_noextra',
  formats: [format(['train', 'test'])],
  outputs: (root) => SVHN_TRAIN_TEST.flatMap((s) => [baseDatasetFile(root, 'svhn', s), baseDatasetFile(root, 'svhn_noextra', s)]),
  needsInput: (ctx, planned) => !planned.includes('svhn') && !SVHN_TRAIN_TEST.every((s) => fs.existsSync(baseDatasetFile(ctx.root, 'svhn', s))),
  build: (ctx, input): Promise<WrittenFile[]> =>
    withDatasetOutput(ctx.root, 'svhn_noextra', async (out) => {
      if (input) await convert(ctx, input, 'svhn_noextra', ['train', 'test'], out);
      for (const s of SVHN_TRAIN_TEST) out.addCopy(baseDatasetFile(ctx.root, 'svhn_noextra', s), baseDatasetFile(ctx.root, 'svhn', s));
    }),
};
