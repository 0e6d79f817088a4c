import { UserError } from '../errors';
import { type BuildContext, type DatasetBuilder, type InputFormat, readAllMembers, readingProgress, type ResolvedInput } from './dataset-inputs';
import { DatasetOutput, pacer, withDatasetOutput, type WrittenFile } from './dataset-output';
import { MatFile } from './mat5';
import { baseDatasetFile } from './paths';
import { chwToHwc } from './pixel-layout';

/**
 * CIFAR-10 and CIFAR-100 (fine labels) from the archives on https://www.cs.toronto.edu/~kriz/cifar.html:
 *
 * - binary version: records of label byte(s) then 3,072 pixel bytes, C×H×W (1,024 red, then
 *   green, then blue values, each plane row by row); CIFAR-100 records carry the coarse then the
 *   fine label. cifar-10-batches-bin/data_batch_1..5.bin + test_batch.bin, cifar-100-binary/train.bin + test.bin.
 * - MATLAB version (what the originals read): `data` is an N×3,072 uint8 array holding the same
 *   3,072 values per image, and `labels` (CIFAR-10) or `fine_labels` (CIFAR-100) its classes.
 *
 * Train is the batches in order (1..5 for CIFAR-10), test the test batch, as the originals write
 * them. The binary version is downloaded (it needs no .mat reader); either is accepted by --from.
 * The Python (pickle) version is not read.
 */

const SIDE = 32;
const PIXELS = SIDE * SIDE * 3;

interface CifarSpec {
  name: string;
  title: string;
  nclass: number;
  binary: { train: string[]; test: string; labelBytes: number; labelAt: number };
  matlab: { train: string[]; test: string; labels: string };
  formats: InputFormat[];
}

const KRIZ = 'https://www.cs.toronto.edu/~kriz';

function spec(s: Omit<CifarSpec, 'formats'>, archives: { binary: [string, string]; matlab: [string, string] }): CifarSpec {
  return {
    ...s,
    formats: [
      { format: 'binary', members: [...s.binary.train, s.binary.test], archive: { file: archives.binary[0], url: `${KRIZ}/${archives.binary[0]}`, md5: archives.binary[1] } },
      { format: 'matlab', members: [...s.matlab.train, s.matlab.test], archive: { file: archives.matlab[0], url: `${KRIZ}/${archives.matlab[0]}`, md5: archives.matlab[1] } },
    ],
  };
}

const BATCHES = [1, 2, 3, 4, 5];

/** md5s as published on the CIFAR page. */
export const CIFAR10 = spec(
  {
    name: 'cifar10',
    title: 'CIFAR-10',
    nclass: 10,
    binary: { train: BATCHES.map((i) => `data_batch_${i}.bin`), test: 'test_batch.bin', labelBytes: 1, labelAt: 0 },
    matlab: { train: BATCHES.map((i) => `data_batch_${i}.mat`), test: 'test_batch.mat', labels: 'labels' },
  },
  { binary: ['cifar-10-binary.tar.gz', 'c32a1d4ab5d03f1284b67883e8d87530'], matlab: ['cifar-10-matlab.tar.gz', '70270af85842c9e89bb428ec9976c926'] },
);

export const CIFAR100 = spec(
  {
    name: 'cifar100',
    title: 'CIFAR-100',
    nclass: 100,
    binary: { train: ['train.bin'], test: 'test.bin', labelBytes: 2, labelAt: 1 },
    matlab: { train: ['train.mat'], test: 'test.mat', labels: 'fine_labels' },
  },
  { binary: ['cifar-100-binary.tar.gz', '03b5dce01913d631647c71ecec9e9cb8'], matlab: ['cifar-100-matlab.tar.gz', '6a4bfa1dcd5c9453dda6bb54194911f4'] },
);

/** The Python versions, named so that --from can say why they are not used. */
export const CIFAR_PYTHON_ARCHIVES = ['cifar-10-python.tar.gz', 'cifar-100-python.tar.gz'];

/** One source file's images, ready to be written in order. */
interface Batch {
  count: number;
  /** Label of image i; fills `out` with its H×W×C pixels. */
  image(i: number, out: Uint8Array): number;
}

function binaryBatch(s: CifarSpec, data: Buffer, where: string): Batch {
  const { labelBytes, labelAt } = s.binary;
  const rec = labelBytes + PIXELS;
  if (data.length === 0 || data.length % rec !== 0) {
    throw new UserError(`${where}: ${data.length} bytes is not a whole number of ${rec}-byte ${s.title} records; is it the right file?`);
  }
  const count = data.length / rec;
  for (let i = 0; i < count; i++) {
    const label = data[i * rec + labelAt];
    if (label >= s.nclass) throw new UserError(`${where}: record ${i} has label ${label}, but ${s.title} has ${s.nclass} classes; is it the right file?`);
  }
  return {
    count,
    image(i, out) {
      chwToHwc(data, i * rec + labelBytes, SIDE, SIDE, 3, out);
      return data[i * rec + labelAt];
    },
  };
}

async function matlabBatch(s: CifarSpec, data: Buffer, where: string): Promise<Batch> {
  const mat = await MatFile.open(data, where);
  const dims = mat.variable('data').dims;
  if (dims.length !== 2 || dims[1] !== PIXELS) {
    throw new UserError(`${where}: variable 'data' is ${dims.join('x')}, expected N x ${PIXELS} (one ${SIDE}x${SIDE} RGB image per row)`);
  }
  const n = dims[0];
  if (mat.numel(s.matlab.labels) !== n) {
    throw new UserError(`${where}: variable '${s.matlab.labels}' holds ${mat.numel(s.matlab.labels)} labels for ${n} images`);
  }
  const labels = await mat.readNumbers(s.matlab.labels);
  labels.forEach((l, i) => {
    if (!(Number.isInteger(l) && l >= 0 && l < s.nclass)) {
      throw new UserError(`${where}: label ${i} is ${l}, but ${s.title} has ${s.nclass} classes (0..${s.nclass - 1}); is it the right file?`);
    }
  });
  const px = await mat.readUint8('data');
  return {
    count: n,
    image(i, out) {
      // column-major N×3072: value k of image i at i + N·k, k running over C×H×W
      for (let c = 0; c < 3; c++) {
        for (let p = 0; p < SIDE * SIDE; p++) out[p * 3 + c] = px[i + n * (c * SIDE * SIDE + p)];
      }
      return labels[i];
    },
  };
}

async function writeBatches(out: DatasetOutput, stem: string, batches: Batch[], tick: () => Promise<void>): Promise<void> {
  const px = new Uint8Array(PIXELS);
  for (const b of batches) {
    for (let i = 0; i < b.count; i++) {
      const label = b.image(i, px);
      out.writeImage(stem, px, SIDE, SIDE, 3, label);
      await tick();
    }
  }
}

export async function buildCifar(s: CifarSpec, ctx: BuildContext, input: ResolvedInput): Promise<WrittenFile[]> {
  const names = input.format === 'binary' ? s.binary : s.matlab;
  const reading = readingProgress(ctx, s.name);
  let members: Awaited<ReturnType<typeof readAllMembers>>;
  try {
    members = await readAllMembers(input, [...names.train, names.test], reading.onBytes);
    reading.complete();
  } finally {
    reading.stop();
  }
  const load = async (m: string): Promise<Batch> => {
    const { data, where } = members.get(m) as { data: Buffer; where: string };
    return input.format === 'binary' ? binaryBatch(s, data, where) : matlabBatch(s, data, where);
  };
  const train: Batch[] = [];
  for (const m of names.train) train.push(await load(m));
  const test = [await load(names.test)];
  members.clear(); // what the batches need they keep; a MATLAB file's bytes are no longer needed
  const total = [...train, ...test].reduce((a, b) => a + b.count, 0);
  return withDatasetOutput(ctx.root, s.name, async (out) => {
    const bar = ctx.progress(`${s.name} images`, total);
    let done = 0;
    const pace = pacer();
    const tick = async (): Promise<void> => {
      done++;
      if (done % 100 === 0 || done === total) bar.update(done);
      await pace();
    };
    try {
      await writeBatches(out, `${s.name}-train`, train, tick);
      await writeBatches(out, `${s.name}-test`, test, tick);
    } finally {
      bar.stop();
    }
  });
}

function cifarBuilder(s: CifarSpec): DatasetBuilder {
  return {
    name: s.name,
    formats: s.formats,
    outputs: (root) => [baseDatasetFile(root, s.name, 'train'), baseDatasetFile(root, s.name, 'test')],
    build: (ctx, input) => buildCifar(s, ctx, input as ResolvedInput),
  };
}

export const cifar10Builder = cifarBuilder(CIFAR10);
export const cifar100Builder = cifarBuilder(CIFAR100);
