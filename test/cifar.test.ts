import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createDatasets, type CreateDatasetsOptions } from '../src/commands/create-datasets';
import type { RemoteFile } from '../src/data/download';
import { UserError } from '../src/errors';
import { decodeRecords, npy, silentProgress } from './helpers/datasets';
import { python } from './helpers/python';

/**
 * Tiny CIFAR archives in the genuine layouts, written by python: the binary version (tar.gz of
 * label + C×H×W records) and the MATLAB version (tar.gz of scipy.io.savemat files), holding the
 * same images, plus what numpy makes of them (reshape to N×3×32×32, transpose to N×32×32×3, as
 * the originals do) as .npy files.
 */
const FIXTURES = `
import sys, io, os, tarfile, numpy as np, scipy.io as sio
d = sys.argv[1]
rng = np.random.RandomState(7)
def add(t, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 0; t.addfile(ti, io.BytesIO(data))
def matbytes(v):
    b = io.BytesIO(); sio.savemat(b, v); return b.getvalue()
def hwc(x): return x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)

# CIFAR-10: five train batches of 3 images, a test batch of 4
batches = [(rng.randint(0, 256, (3, 3072)).astype(np.uint8), rng.randint(0, 10, 3).astype(np.uint8)) for _ in range(5)]
test = (rng.randint(0, 256, (4, 3072)).astype(np.uint8), rng.randint(0, 10, 4).astype(np.uint8))
with tarfile.open(d + '/cifar-10-binary.tar.gz', 'w:gz') as t:
    add(t, 'cifar-10-batches-bin/batches.meta.txt', b'airplane\\n')
    for i, (x, y) in enumerate(batches):
        add(t, 'cifar-10-batches-bin/data_batch_%d.bin' % (i + 1), np.concatenate([y[:, None], x], 1).tobytes())
    add(t, 'cifar-10-batches-bin/test_batch.bin', np.concatenate([test[1][:, None], test[0]], 1).tobytes())
# the MATLAB archive stores the batches in another order: builders must not depend on it
with tarfile.open(d + '/cifar-10-matlab.tar.gz', 'w:gz') as t:
    add(t, 'cifar-10-batches-mat/test_batch.mat', matbytes({'data': test[0], 'labels': test[1][:, None], 'batch_label': 'testing batch 1 of 1'}))
    for i in [4, 2, 0, 1, 3]:
        x, y = batches[i]
        add(t, 'cifar-10-batches-mat/data_batch_%d.mat' % (i + 1), matbytes({'data': x, 'labels': y[:, None], 'batch_label': 'training batch'}))
np.save(d + '/c10-train-x.npy', hwc(np.concatenate([b[0] for b in batches])))
np.save(d + '/c10-train-y.npy', np.concatenate([b[1] for b in batches]).astype(np.int64))
np.save(d + '/c10-test-x.npy', hwc(test[0]))
np.save(d + '/c10-test-y.npy', test[1].astype(np.int64))
os.makedirs(d + '/extracted/cifar-10-batches-bin')
for i, (x, y) in enumerate(batches):
    open(d + '/extracted/cifar-10-batches-bin/data_batch_%d.bin' % (i + 1), 'wb').write(np.concatenate([y[:, None], x], 1).tobytes())
open(d + '/extracted/cifar-10-batches-bin/test_batch.bin', 'wb').write(np.concatenate([test[1][:, None], test[0]], 1).tobytes())

# CIFAR-100: 6 train, 3 test; coarse and fine labels
def c100(n):
    return rng.randint(0, 256, (n, 3072)).astype(np.uint8), rng.randint(0, 20, n).astype(np.uint8), rng.randint(0, 100, n).astype(np.uint8)
tr, te = c100(6), c100(3)
with tarfile.open(d + '/cifar-100-binary.tar.gz', 'w:gz') as t:
    for name, (x, c, f) in [('train.bin', tr), ('test.bin', te)]:
        add(t, 'cifar-100-binary/' + name, np.concatenate([c[:, None], f[:, None], x], 1).tobytes())
with tarfile.open(d + '/cifar-100-matlab.tar.gz', 'w:gz') as t:
    for name, (x, c, f) in [('train.mat', tr), ('test.mat', te)]:
        files = np.empty((len(x), 1), dtype=object)
        for i in range(len(x)): files[i, 0] = 'img_%d.png' % i
        add(t, 'cifar-100-matlab/' + name, matbytes({'data': x, 'coarse_labels': c[:, None].astype(np.float64), 'fine_labels': f[:, None].astype(np.float64), 'filenames': files}))
np.save(d + '/c100-train-x.npy', hwc(tr[0])); np.save(d + '/c100-train-y.npy', tr[2].astype(np.int64))
np.save(d + '/c100-test-x.npy', hwc(te[0])); np.save(d + '/c100-test-y.npy', te[2].astype(np.int64))

# broken inputs
os.makedirs(d + '/bad-label')
with tarfile.open(d + '/bad-label/cifar-10-binary.tar.gz', 'w:gz') as t:
    for i in range(5):
        add(t, 'cifar-10-batches-bin/data_batch_%d.bin' % (i + 1), bytes([3]) + bytes(3072))
    add(t, 'cifar-10-batches-bin/test_batch.bin', bytes([10]) + bytes(3072))
os.makedirs(d + '/no-test')
with tarfile.open(d + '/no-test/cifar-10-binary.tar.gz', 'w:gz') as t:
    for i in range(5):
        add(t, 'cifar-10-batches-bin/data_batch_%d.bin' % (i + 1), bytes([1]) + bytes(3072))
os.makedirs(d + '/wrong-vars')
with tarfile.open(d + '/wrong-vars/cifar-10-matlab.tar.gz', 'w:gz') as t:
    for n in ['data_batch_%d.mat' % i for i in range(1, 6)] + ['test_batch.mat']:
        add(t, 'cifar-10-batches-mat/' + n, matbytes({'data': np.zeros((2, 3072), np.uint8), 'label': np.zeros((2, 1), np.uint8)}))
os.makedirs(d + '/ragged')
with tarfile.open(d + '/ragged/cifar-10-binary.tar.gz', 'w:gz') as t:
    for i in range(5):
        add(t, 'cifar-10-batches-bin/data_batch_%d.bin' % (i + 1), bytes(3073))
    add(t, 'cifar-10-batches-bin/test_batch.bin', bytes(3000))
`;

let fx: string;
let root: string;
beforeAll(() => {
  fx = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-cifar-fx-'));
  python(FIXTURES, fx);
});
afterAll(() => fs.rmSync(fx, { recursive: true, force: true }));
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-cifar-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function opts(names: string[], from: string[], force = false): CreateDatasetsOptions {
  return { names, dataDir: root, force, from };
}

async function build(names: string[], from: string[], extra: { force?: boolean; fetch?: (r: RemoteFile, dir: string) => Promise<string> } = {}): Promise<string[]> {
  const logs: string[] = [];
  await createDatasets(opts(names, from, extra.force), (l) => logs.push(l), { progress: silentProgress(), fetch: extra.fetch });
  return logs;
}

async function expectMatches(name: string, prefix: string): Promise<void> {
  for (const subset of ['train', 'test']) {
    const got = await decodeRecords(path.join(root, `${name}-${subset}.tfrecord`));
    const x = npy(fx, `${prefix}-${subset}-x.npy`);
    const y = npy(fx, `${prefix}-${subset}-y.npy`);
    expect(got.shapes).toEqual(['32x32x3']);
    expect(got.labels).toEqual(y.values);
    expect(Buffer.from(got.pixels).equals(Buffer.from(x.values as Uint8Array))).toBe(true);
  }
}

const leftovers = (): string[] => fs.readdirSync(root).filter((f) => f !== 'downloads');

describe('cifar10', () => {
  it('converts the binary archive: pixels and labels as numpy reads them, batches 1..5 in order', async () => {
    const logs = await build(['cifar10'], [path.join(fx, 'cifar-10-binary.tar.gz')]);
    expect(logs).toEqual([
      `Wrote ${path.join(root, 'cifar10-train.tfrecord')} (15 records)`,
      `Wrote ${path.join(root, 'cifar10-test.tfrecord')} (4 records)`,
    ]);
    await expectMatches('cifar10', 'c10');
    expect(fs.readdirSync(root).sort()).toEqual(['cifar10-test.tfrecord', 'cifar10-train.tfrecord']);
  });

  it('writes the same files from the MATLAB archive as from the binary one', async () => {
    await build(['cifar10'], [path.join(fx, 'cifar-10-binary.tar.gz')]);
    const binary = ['train', 'test'].map((s) => fs.readFileSync(path.join(root, `cifar10-${s}.tfrecord`)));
    await build(['cifar10'], [path.join(fx, 'cifar-10-matlab.tar.gz')], { force: true });
    const matlab = ['train', 'test'].map((s) => fs.readFileSync(path.join(root, `cifar10-${s}.tfrecord`)));
    expect(matlab[0].equals(binary[0])).toBe(true);
    expect(matlab[1].equals(binary[1])).toBe(true);
  });

  it('reads an extracted folder, and skips an installed dataset unless forced', async () => {
    await build(['cifar10'], [path.join(fx, 'extracted')]);
    await expectMatches('cifar10', 'c10');
    expect(await build(['cifar10'], [path.join(fx, 'extracted')])).toEqual(['Skipping already installed: cifar10']);
    expect(await build(['cifar10'], [path.join(fx, 'extracted')], { force: true })).toHaveLength(2);
  });

  it('downloads the binary archive (published md5) into <data-dir>/downloads, then reuses it', async () => {
    const fetched: RemoteFile[] = [];
    const fetch = async (r: RemoteFile, dir: string): Promise<string> => {
      fetched.push(r);
      fs.mkdirSync(dir, { recursive: true });
      fs.copyFileSync(path.join(fx, r.file), path.join(dir, r.file));
      return path.join(dir, r.file);
    };
    await build(['cifar10'], [], { fetch });
    expect(fetched).toEqual([{ file: 'cifar-10-binary.tar.gz', url: 'https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz', md5: 'c32a1d4ab5d03f1284b67883e8d87530' }]);
    await expectMatches('cifar10', 'c10');
    await build(['cifar10'], [], { fetch, force: true });
    expect(fetched).toHaveLength(1);
  });
});

describe('cifar100', () => {
  it.each(['cifar-100-binary.tar.gz', 'cifar-100-matlab.tar.gz'])('takes the fine labels from %s', async (archive) => {
    await build(['cifar100'], [path.join(fx, archive)]);
    await expectMatches('cifar100', 'c100');
  });

  it('finds both archives in one --from folder', async () => {
    const logs = await build(['cifar100', 'cifar10'], [fx]);
    expect(logs.map((l) => path.basename(l.split(' ')[1]))).toEqual(['cifar10-train.tfrecord', 'cifar10-test.tfrecord', 'cifar100-train.tfrecord', 'cifar100-test.tfrecord']);
  });
});

describe('bad CIFAR input: one line naming the file, nothing written', () => {
  async function fails(from: string, message: string | RegExp, names = ['cifar10']): Promise<void> {
    const p = build(names, [from]);
    await expect(p).rejects.toThrow(UserError);
    await expect(build(names, [from])).rejects.toThrow(message);
    expect(leftovers()).toEqual([]);
  }

  it('a truncated archive', async () => {
    const gz = fs.readFileSync(path.join(fx, 'cifar-10-binary.tar.gz'));
    const dir = path.join(root, 'downloads');
    fs.mkdirSync(dir);
    const cut = path.join(dir, 'cifar-10-binary.tar.gz');
    fs.writeFileSync(cut, gz.subarray(0, gz.length - 2000));
    await fails(cut, new RegExp(`^${cut}: (archive is truncated|cannot read the archive)`));
  });

  it('a label out of range, a ragged batch, a missing member, wrong .mat variables', async () => {
    const bad = path.join(fx, 'bad-label', 'cifar-10-binary.tar.gz');
    await fails(bad, `${bad}:cifar-10-batches-bin/test_batch.bin: record 0 has label 10, but CIFAR-10 has 10 classes; is it the right file?`);
    const ragged = path.join(fx, 'ragged', 'cifar-10-binary.tar.gz');
    await fails(ragged, `${ragged}:cifar-10-batches-bin/test_batch.bin: 3000 bytes is not a whole number of 3073-byte CIFAR-10 records`);
    const noTest = path.join(fx, 'no-test', 'cifar-10-binary.tar.gz');
    await fails(noTest, `${noTest}: lacks test_batch.bin; is it the right archive?`);
    const vars = path.join(fx, 'wrong-vars', 'cifar-10-matlab.tar.gz');
    await fails(vars, new RegExp(`^${vars}:cifar-10-batches-mat/data_batch_1\\.mat: has no variable 'labels' \\(it holds: data, label\\)$`));
  });

  it('--from that lacks the dataset, the Python version, an unknown file', async () => {
    await expect(build(['cifar100'], [path.join(fx, 'cifar-10-binary.tar.gz')])).rejects.toThrow(
      `cifar100: not found in --from ${path.join(fx, 'cifar-10-binary.tar.gz')}: expected cifar-100-binary.tar.gz (or its files train.bin, test.bin); or cifar-100-matlab.tar.gz (or its files train.mat, test.mat); or leave out --from to download it`,
    );
    const py = path.join(root, 'cifar-10-python.tar.gz');
    fs.writeFileSync(py, 'x');
    await expect(build(['cifar10'], [py])).rejects.toThrow(`--from ${py}: the Python (pickle) version of CIFAR is not read; use cifar-10-binary.tar.gz or cifar-10-matlab.tar.gz`);
    const other = path.join(root, 'photos.zip');
    fs.writeFileSync(other, 'x');
    await expect(build(['cifar10'], [other])).rejects.toThrow(new RegExp(`^--from ${other}: not a file create-datasets reads; expected one of cifar-10-binary\\.tar\\.gz, `));
    await expect(build(['cifar10'], [path.join(root, 'nothing-here')])).rejects.toThrow(`--from ${path.join(root, 'nothing-here')}: no such file or folder`);
  });

  it('checks every dataset of a run before building the first', async () => {
    await expect(build(['cifar10', 'cifar100'], [path.join(fx, 'cifar-10-binary.tar.gz')])).rejects.toThrow('cifar100: not found in --from');
    expect(leftovers()).toEqual([]);
  });
});
