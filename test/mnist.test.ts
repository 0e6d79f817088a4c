import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeImageExample, decodeLabel } from '../src/data/example';
import { buildMnist, interleaveByClass, MNIST_CLASS_COUNTS, mnistDivision } from '../src/data/mnist';
import { decodeImage } from '../src/data/png';
import { readAllRecords } from '../src/data/tfrecord';

const TRAIN_PER_CLASS = [801, 902, 793, 826, 784, 690, 811, 856, 755, 782];
const TEST_PER_CLASS = [200, 225, 198, 206, 196, 173, 203, 214, 189, 196];

describe('MNIST division', () => {
  it('interleaves classes round-robin, skipping exhausted ones', () => {
    expect(interleaveByClass([[0, 1, 2], [0], [0, 1]])).toEqual([[0, 0], [1, 0], [2, 0], [0, 1], [2, 1], [0, 2]]);
  });

  it('puts the first round(0.8 n) digits of each class in train', () => {
    const d = mnistDivision();
    const count = (pairs: Array<[number, number]>, c: number): number => pairs.filter(([k]) => k === c).length;
    expect(MNIST_CLASS_COUNTS.map((_, c) => count(d.train, c))).toEqual(TRAIN_PER_CLASS);
    expect(MNIST_CLASS_COUNTS.map((_, c) => count(d.test, c))).toEqual(TEST_PER_CLASS);
    const class5Test = d.test.filter(([k]) => k === 5).map(([, i]) => i);
    expect(class5Test[0]).toBe(690);
    expect(class5Test[class5Test.length - 1]).toBe(862);
  });
});

describe('buildMnist', () => {
  let a: string;
  let b: string;
  beforeAll(() => {
    a = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-mnist-a-'));
    b = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-mnist-b-'));
  });
  afterAll(() => {
    fs.rmSync(a, { recursive: true, force: true });
    fs.rmSync(b, { recursive: true, force: true });
  });

  it('writes 8,000 train and 2,000 test records, class-balanced in every prefix', async () => {
    const calls: Array<[number, number]> = [];
    const r = await buildMnist(a, { onProgress: (done, total) => calls.push([done, total]) });
    expect(r).toEqual({ train: 8000, test: 2000, skipped: false });
    expect(calls[calls.length - 1]).toEqual([10000, 10000]);
    for (const [subset, perClass] of [['train', TRAIN_PER_CLASS], ['test', TEST_PER_CLASS]] as const) {
      const labels = readAllRecords(path.join(a, `mnist-${subset}.tfrecord`)).map(decodeLabel);
      expect(labels).toHaveLength(perClass.reduce((x, y) => x + y, 0));
      const hist = new Array(10).fill(0);
      labels.forEach((l) => hist[l]++);
      expect(hist).toEqual(perClass);
      expect(labels.slice(0, 20)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // the first 1000 records hold 100 of each class
      const prefix = new Array(10).fill(0);
      labels.slice(0, 1000).forEach((l) => prefix[l]++);
      expect(prefix).toEqual(new Array(10).fill(100));
    }
    expect(fs.readdirSync(a).sort()).toEqual(['mnist-test.tfrecord', 'mnist-train.tfrecord']);
  });

  it('stores the package digits as 28x28 grayscale PNGs, pixels round(255 v)', async () => {
    const raw = (digit: number): number[] =>
      (JSON.parse(fs.readFileSync(require.resolve(`mnist/src/digits/${digit}.json`), 'utf8')) as { data: number[] }).data;
    const records = readAllRecords(path.join(a, 'mnist-test.tfrecord'));
    // record 13 of test is class 3's second test digit: index round(0.8 * 1032) + 1 = 827
    const ex = decodeImageExample(records[13]);
    expect(ex.label).toBe(3);
    const img = await decodeImage(ex.image);
    expect(img).toMatchObject({ height: 28, width: 28, channels: 1 });
    const want = raw(3).slice(827 * 784, 828 * 784).map((v) => Math.round(v * 255));
    expect(Array.from(img.data)).toEqual(want);
    expect(want.some((v) => v > 0)).toBe(true);
  });

  it('skips an existing pair unless forced, and rebuilds byte-identical files', async () => {
    const skipped = await buildMnist(a, {});
    expect(skipped).toEqual({ train: 8000, test: 2000, skipped: true });
    const r = await buildMnist(b, { force: true });
    expect(r.skipped).toBe(false);
    for (const f of ['mnist-train.tfrecord', 'mnist-test.tfrecord']) {
      expect(fs.readFileSync(path.join(b, f)).equals(fs.readFileSync(path.join(a, f)))).toBe(true);
    }
  });

  it('rebuilds when only one file of the pair exists', async () => {
    fs.rmSync(path.join(b, 'mnist-test.tfrecord'));
    const r = await buildMnist(b, {});
    expect(r).toEqual({ train: 8000, test: 2000, skipped: false });
    expect(fs.readFileSync(path.join(b, 'mnist-test.tfrecord')).equals(fs.readFileSync(path.join(a, 'mnist-test.tfrecord')))).toBe(true);
  });
});
