import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createDatasets } from '../src/commands/create-datasets';
import type { RemoteFile } from '../src/data/download';
import { decodeRecords, npy, silentProgress } from './helpers/datasets';
import { python } from './helpers/python';

/**
 * A tiny stl10_binary.tar.gz in the published layout. Each raw byte encodes its own position
 * (image, channel, and the two in-plane indices with different weights), so a transpose in the
 * wrong direction gives different pixels. numpy's reading (reshape N×3×96×96, transpose
 * (0, 3, 2, 1), as the originals do) is saved beside it.
 */
const FIXTURES = `
import sys, io, os, tarfile, numpy as np
d = sys.argv[1]
def add(t, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 0; t.addfile(ti, io.BytesIO(data))
def images(n, seed):
    n_, c, a, b = np.meshgrid(np.arange(n), np.arange(3), np.arange(96), np.arange(96), indexing='ij')
    return ((n_ * 31 + c * 80 + a * 3 + b * 7 + seed) % 256).astype(np.uint8)
files = {
    'train_X.bin': images(3, 0).tobytes(), 'train_y.bin': bytes([1, 10, 4]),
    'test_X.bin': images(2, 100).tobytes(), 'test_y.bin': bytes([2, 3]),
    'unlabeled_X.bin': images(4, 200).tobytes(),
    'fold_indices.txt': b'0 2 1 \\n1 0 \\n', 'class_names.txt': b'airplane\\nbird\\n',
}
# labels before images for test, after for train; the unlabelled images in the middle
order = ['test_y.bin', 'test_X.bin', 'class_names.txt', 'unlabeled_X.bin', 'train_X.bin', 'train_y.bin', 'fold_indices.txt']
def archive(path, files, order):
    with tarfile.open(path, 'w:gz') as t:
        for n in order: add(t, 'stl10_binary/' + n, files[n])
archive(d + '/stl10_binary.tar.gz', files, order)
os.makedirs(d + '/extracted/stl10_binary')
for n, b in files.items(): open(d + '/extracted/stl10_binary/' + n, 'wb').write(b)
for s in ['train', 'test', 'unlabeled']:
    x = np.frombuffer(files[s + '_X.bin'], np.uint8).reshape(-1, 3, 96, 96).transpose(0, 3, 2, 1)
    np.save('%s/%s-x.npy' % (d, s), np.ascontiguousarray(x))
for name, change in [('bad-label', {'train_y.bin': bytes([1, 0, 4])}), ('ragged', {'test_X.bin': bytes(27648 + 5)}),
                     ('few-labels', {'test_y.bin': bytes([2])}), ('bad-folds', {'fold_indices.txt': b'0 1\\nnot numbers\\n'})]:
    os.makedirs(d + '/' + name)
    archive(d + '/' + name + '/stl10_binary.tar.gz', dict(files, **change), order)
os.makedirs(d + '/no-folds')
archive(d + '/no-folds/stl10_binary.tar.gz', files, order[:-1])
`;

let fx: string;
let root: string;
beforeAll(() => {
  fx = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-stl10-fx-'));
  python(FIXTURES, fx);
});
afterAll(() => fs.rmSync(fx, { recursive: true, force: true }));
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-stl10-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

async function build(from: string[], o: { force?: boolean; fetch?: (r: RemoteFile, dir: string) => Promise<string> } = {}): Promise<string[]> {
  const logs: string[] = [];
  await createDatasets({ names: ['stl10'], dataDir: root, force: Boolean(o.force), from }, (l) => logs.push(l), { progress: silentProgress(), fetch: o.fetch });
  return logs;
}

async function expectStl10(): Promise<void> {
  const expectedLabels: Record<string, number[]> = { train: [0, 9, 3], test: [1, 2], unlabeled: [0, 0, 0, 0] };
  for (const s of ['train', 'test', 'unlabeled']) {
    const got = await decodeRecords(path.join(root, `stl10-${s}.tfrecord`));
    expect(got.shapes).toEqual(['96x96x3']);
    expect(got.labels).toEqual(expectedLabels[s]);
    expect(Buffer.from(got.pixels).equals(Buffer.from(npy(fx, `${s}-x.npy`).values as Uint8Array))).toBe(true);
  }
  // by hand: the file stores each plane column by column, so pixel (row 1, column 0) of the first
  // training image is the file's second byte, and (row 0, column 1) its 97th
  const raw = fs.readFileSync(path.join(fx, 'extracted', 'stl10_binary', 'train_X.bin'));
  const train = await decodeRecords(path.join(root, 'stl10-train.tfrecord'));
  expect(train.pixels[(1 * 96 + 0) * 3]).toBe(raw[1]);
  expect(train.pixels[(0 * 96 + 1) * 3]).toBe(raw[96]);
  expect(train.pixels[(5 * 96 + 2) * 3 + 2]).toBe(raw[2 * 9216 + 2 * 96 + 5]);
  expect(fs.readFileSync(path.join(root, 'stl10_fold_indices.txt'), 'utf8')).toBe('0 2 1 \n1 0 \n');
}

describe('stl10', () => {
  it('converts the archive: column-major planes transposed, labels 1..10 -> 0..9, unlabelled label 0, folds copied', async () => {
    const logs = await build([path.join(fx, 'stl10_binary.tar.gz')]);
    expect(logs).toEqual([
      `Wrote ${path.join(root, 'stl10-train.tfrecord')} (3 records)`,
      `Wrote ${path.join(root, 'stl10-test.tfrecord')} (2 records)`,
      `Wrote ${path.join(root, 'stl10-unlabeled.tfrecord')} (4 records)`,
      `Wrote ${path.join(root, 'stl10_fold_indices.txt')}`,
    ]);
    await expectStl10();
  });

  it('reads the extracted files; skips once installed, rebuilds when the folds file is gone', async () => {
    await build([path.join(fx, 'extracted')]);
    await expectStl10();
    expect(await build([path.join(fx, 'extracted')])).toEqual(['Skipping already installed: stl10']);
    fs.rmSync(path.join(root, 'stl10_fold_indices.txt'));
    expect(await build([path.join(fx, 'extracted')])).toHaveLength(4);
  });

  it('downloads the archive from the STL-10 site (no published md5: checked by length)', async () => {
    const fetched: RemoteFile[] = [];
    const fetch = async (r: RemoteFile, dir: string): Promise<string> => {
      fetched.push(r);
      fs.mkdirSync(dir, { recursive: true });
      fs.copyFileSync(path.join(fx, r.file), path.join(dir, r.file));
      return path.join(dir, r.file);
    };
    await build([], { fetch });
    expect(fetched).toEqual([{ file: 'stl10_binary.tar.gz', url: 'http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz' }]);
    await expectStl10();
  });
});

describe('bad STL-10 input: one line naming the file, nothing written', () => {
  it.each([
    ['bad-label', 'stl10_binary/train_y.bin: label 1 is 0, but STL-10 labels are 1..10; is it the right file?'],
    ['ragged', 'stl10_binary/test_X.bin: 27653 bytes is not a whole number of 96x96x3 images'],
    ['few-labels', 'stl10_binary/test_y.bin: holds 1 labels for the 2 images of test_X.bin'],
    ['bad-folds', 'stl10_binary/fold_indices.txt: line 2 is not a list of image indices'],
    ['no-folds', ': lacks fold_indices.txt; is it the right archive?'],
  ])('%s', async (dir, message) => {
    const archive = path.join(fx, dir, 'stl10_binary.tar.gz');
    await expect(build([archive])).rejects.toThrow(`${archive}${message.startsWith(':') ? '' : ':'}${message}`);
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it('a truncated archive', async () => {
    const gz = fs.readFileSync(path.join(fx, 'stl10_binary.tar.gz'));
    const cut = path.join(root, 'stl10_binary.tar.gz');
    fs.writeFileSync(cut, gz.subarray(0, Math.floor(gz.length * 0.8)));
    await expect(build([cut])).rejects.toThrow(new RegExp(`^${cut}: (archive is truncated|cannot read the archive)`));
    expect(fs.readdirSync(root)).toEqual(['stl10_binary.tar.gz']);
  });
});
