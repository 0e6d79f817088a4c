import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createDatasets } from '../src/commands/create-datasets';
import type { RemoteFile } from '../src/data/download';
import { UserError } from '../src/errors';
import { decodeRecords, npy, silentProgress } from './helpers/datasets';
import { python } from './helpers/python';

/**
 * SVHN .mat files as the site publishes them (X: 32×32×3×N uint8, y: N×1 double, 1..10), written
 * by scipy.io.savemat compressed (like the real files) into z/ and uncompressed into plain/, and
 * numpy's reading of them (X moved to N×H×W×C, y − 1) as .npy files.
 */
const FIXTURES = `
import sys, os, numpy as np, scipy.io as sio
d = sys.argv[1]
rng = np.random.RandomState(11)
for sub in ['z', 'plain', 'broken']: os.makedirs(d + '/' + sub)
for name, n in [('train', 7), ('test', 5), ('extra', 9)]:
    X = rng.randint(0, 256, (32, 32, 3, n)).astype(np.uint8)
    y = rng.randint(1, 11, (n, 1)).astype(np.float64)
    y[0, 0] = 10  # the digit 0
    for sub, comp in [('z', True), ('plain', False)]:
        sio.savemat('%s/%s/%s_32x32.mat' % (d, sub, name), {'X': X, 'y': y}, do_compression=comp)
    back = sio.loadmat('%s/z/%s_32x32.mat' % (d, name))
    np.save('%s/%s-x.npy' % (d, name), np.transpose(back['X'], (3, 0, 1, 2)))
    np.save('%s/%s-y.npy' % (d, name), (back['y'].flatten() - 1).astype(np.int64))
sio.savemat(d + '/broken/train_32x32.mat', {'images': np.zeros((32, 32, 3, 2), np.uint8), 'labels': np.ones((2, 1))}, do_compression=True)
sio.savemat(d + '/broken/test_32x32.mat', {'X': np.zeros((32, 32, 3, 4), np.uint8), 'y': np.array([[1], [2], [3], [0]], np.float64)}, do_compression=True)
sio.savemat(d + '/broken/extra_32x32.mat', {'X': np.zeros((32, 32, 3, 2), np.uint8), 'y': np.ones((3, 1))}, do_compression=True)
`;

let fx: string;
let root: string;
beforeAll(() => {
  fx = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-svhn-fx-'));
  python(FIXTURES, fx);
});
afterAll(() => fs.rmSync(fx, { recursive: true, force: true }));
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-svhn-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

async function build(names: string[], from: string[], fetch?: (r: RemoteFile, dir: string) => Promise<string>): Promise<string[]> {
  const logs: string[] = [];
  await createDatasets({ names, dataDir: root, force: false, from }, (l) => logs.push(l), { progress: silentProgress(), fetch });
  return logs;
}

async function expectSubset(file: string, subset: string): Promise<void> {
  const got = await decodeRecords(path.join(root, file));
  expect(got.shapes).toEqual(['32x32x3']);
  expect(got.labels).toEqual(npy(fx, `${subset}-y.npy`).values);
  expect(got.labels[0]).toBe(9);
  expect(Buffer.from(got.pixels).equals(Buffer.from(npy(fx, `${subset}-x.npy`).values as Uint8Array))).toBe(true);
}

describe('svhn', () => {
  it.each(['z', 'plain'])('converts the %s .mat files: images as numpy reads them, labels 1..10 -> 0..9', async (sub) => {
    const logs = await build(['svhn'], [path.join(fx, sub)]);
    expect(logs).toEqual(
      [['train', 7], ['test', 5], ['extra', 9]].map(([s, n]) => `Wrote ${path.join(root, `svhn-${s}.tfrecord`)} (${n} records)`),
    );
    for (const s of ['train', 'test', 'extra']) await expectSubset(`svhn-${s}.tfrecord`, s);
  });

  it('downloads the three files from the SVHN site with their published md5s', async () => {
    const fetched: RemoteFile[] = [];
    const fetch = async (r: RemoteFile, dir: string): Promise<string> => {
      fetched.push(r);
      fs.mkdirSync(dir, { recursive: true });
      fs.copyFileSync(path.join(fx, 'z', r.file), path.join(dir, r.file));
      return path.join(dir, r.file);
    };
    await build(['svhn'], [], fetch);
    expect(fetched).toEqual([
      { file: 'train_32x32.mat', url: 'http://ufldl.stanford.edu/housenumbers/train_32x32.mat', md5: 'e26dedcc434d2e4c54c9b2d4a06d8373' },
      { file: 'test_32x32.mat', url: 'http://ufldl.stanford.edu/housenumbers/test_32x32.mat', md5: 'eb5a983be6a315427106f1b164d9cef3' },
      { file: 'extra_32x32.mat', url: 'http://ufldl.stanford.edu/housenumbers/extra_32x32.mat', md5: 'a93ce644f1a588dc4d68dda5feec44a7' },
    ]);
    await expectSubset('svhn-extra.tfrecord', 'extra');
  });
});

describe('svhn_noextra', () => {
  it("copies svhn's train and test files under its own name", async () => {
    const logs = await build(['svhn_noextra', 'svhn'], [path.join(fx, 'z')]);
    expect(logs.slice(3)).toEqual([
      `Wrote ${path.join(root, 'svhn_noextra-train.tfrecord')} (a copy of svhn-train.tfrecord)`,
      `Wrote ${path.join(root, 'svhn_noextra-test.tfrecord')} (a copy of svhn-test.tfrecord)`,
    ]);
    for (const s of ['train', 'test']) {
      expect(fs.readFileSync(path.join(root, `svhn_noextra-${s}.tfrecord`)).equals(fs.readFileSync(path.join(root, `svhn-${s}.tfrecord`)))).toBe(true);
    }
    expect(fs.readdirSync(root).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('builds svhn-train/test from train and test alone when they are missing (no extra needed)', async () => {
    const only = path.join(root, 'two');
    fs.mkdirSync(only);
    for (const s of ['train', 'test']) fs.copyFileSync(path.join(fx, 'z', `${s}_32x32.mat`), path.join(only, `${s}_32x32.mat`));
    const logs = await build(['svhn_noextra'], [only]);
    expect(logs).toEqual([
      `Wrote ${path.join(root, 'svhn-train.tfrecord')} (7 records)`,
      `Wrote ${path.join(root, 'svhn-test.tfrecord')} (5 records)`,
      `Wrote ${path.join(root, 'svhn_noextra-train.tfrecord')} (7 records, a copy of svhn-train.tfrecord)`,
      `Wrote ${path.join(root, 'svhn_noextra-test.tfrecord')} (5 records, a copy of svhn-test.tfrecord)`,
    ]);
    await expectSubset('svhn_noextra-test.tfrecord', 'test');
    expect(await build(['svhn_noextra'], [only])).toEqual(['Skipping already installed: svhn_noextra']);
    // svhn itself still needs extra
    await expect(build(['svhn'], [only])).rejects.toThrow('svhn: not found in --from');
  });
});

describe('bad SVHN input: one line naming the file, no subset written', () => {
  const tfrecords = (): string[] => fs.readdirSync(root).filter((f) => f.includes('tfrecord'));

  function mixed(replace: string, withFile: string): string {
    const dir = path.join(root, 'in');
    fs.mkdirSync(dir, { recursive: true });
    for (const s of ['train', 'test', 'extra']) fs.copyFileSync(path.join(fx, 'z', `${s}_32x32.mat`), path.join(dir, `${s}_32x32.mat`));
    fs.copyFileSync(withFile, path.join(dir, replace));
    return dir;
  }

  it('wrong variables, a label outside 1..10, a label count that does not match', async () => {
    const a = mixed('train_32x32.mat', path.join(fx, 'broken', 'train_32x32.mat'));
    await expect(build(['svhn'], [a])).rejects.toThrow(`${path.join(a, 'train_32x32.mat')}: has no variable 'X' (it holds: images, labels)`);
    const b = mixed('test_32x32.mat', path.join(fx, 'broken', 'test_32x32.mat'));
    await expect(build(['svhn'], [b])).rejects.toThrow(`${path.join(b, 'test_32x32.mat')}: label 3 is 0, but SVHN labels are 1..10; is it the right file?`);
    const c = mixed('extra_32x32.mat', path.join(fx, 'broken', 'extra_32x32.mat'));
    await expect(build(['svhn'], [c])).rejects.toThrow(`${path.join(c, 'extra_32x32.mat')}: variable 'y' holds 3 labels for 2 images`);
    expect(tfrecords()).toEqual([]);
  });

  it('a truncated extra file leaves no train or test file behind', async () => {
    const cut = path.join(root, 'cut.mat');
    const full = fs.readFileSync(path.join(fx, 'z', 'extra_32x32.mat'));
    fs.writeFileSync(cut, full.subarray(0, full.length - 500));
    const dir = mixed('extra_32x32.mat', cut);
    const err = await build(['svhn'], [dir]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toMatch(new RegExp(`^${path.join(dir, 'extra_32x32.mat')}: truncated`));
    expect(tfrecords()).toEqual([]);

    // cut inside the compressed image data: found while streaming, after train and test were converted
    const mid = path.join(root, 'mid.mat');
    const bytes = Buffer.from(full);
    const tagAt = bytes.indexOf(Buffer.from([15, 0, 0, 0]), 128);
    const len = bytes.readUInt32LE(tagAt + 4);
    bytes.fill(0, tagAt + 8 + Math.floor(len * 0.7), tagAt + 8 + len);
    fs.writeFileSync(mid, bytes);
    const dir2 = mixed('extra_32x32.mat', mid);
    await expect(build(['svhn'], [dir2])).rejects.toThrow(new RegExp(`^${path.join(dir2, 'extra_32x32.mat')}: `));
    expect(tfrecords()).toEqual([]);
  });
});
