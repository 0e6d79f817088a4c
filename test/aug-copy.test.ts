import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { register, runAugCopy } from '../src/commands/aug-copy';
import { augCopy, AugCopyOptions } from '../src/data/aug-copy';
import { recordSeed, shuffledOrder } from '../src/data/aug-copy-order';
import { createSplit } from '../src/data/create-split';
import { decodeImageExample, encodeImageExample } from '../src/data/example';
import { decodeImage, encodePngSync } from '../src/data/png';
import { readAllRecords, writeRecords } from '../src/data/tfrecord';
import { loadTrainingData } from '../src/train/dataset';
import { UserError } from '../src/errors';

const H = 6;
const W = 5;

function image(i: number, channels = 3): Uint8Array {
  const px = new Uint8Array(H * W * channels);
  for (let k = 0; k < px.length; k++) px[k] = (i * 53 + k * 17 + ((k * k) >> 2)) & 0xff;
  return px;
}

/** toy-train (10 images, 4 classes), toy-test (3), and the split toy.1@4 (6 unlabelled). */
async function toySplit(root: string, channels = 3): Promise<void> {
  const rec = (i: number) => encodeImageExample(encodePngSync(image(i, channels), H, W, channels), i % 4);
  writeRecords(path.join(root, 'toy-train.tfrecord'), Array.from({ length: 10 }, (_, i) => rec(i)));
  writeRecords(path.join(root, 'toy-test.tfrecord'), Array.from({ length: 3 }, (_, i) => rec(100 + i)));
  await createSplit({ root, dataset: 'toy', seed: 1, size: 4 });
}

const ssl = (root: string, f: string) => path.join(root, 'SSL', f);
const bytes = (f: string) => fs.readFileSync(f);

async function userError(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    expect((e as Error).message).not.toContain('\n');
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

let tmp: string;
beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-aug-copy-'));
  await toySplit(tmp);
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const base = (o: Partial<AugCopyOptions> = {}): AugCopyOptions => ({ root: tmp, dataset: 'toy.1@4', copies: 3, augment: 'cifar10', workers: 1, ...o });

describe('the copy order', () => {
  it('is Python\'s random.seed(s); random.shuffle(list(range(n)))', () => {
    // python3 -c "import random; random.seed(1); x=list(range(18)); random.shuffle(x); print(x)"
    expect(Array.from(shuffledOrder(1, 18))).toEqual([10, 5, 16, 17, 9, 0, 15, 14, 3, 6, 11, 13, 12, 7, 1, 8, 2, 4]);
    expect(Array.from(shuffledOrder(7, 18))).toEqual([14, 2, 9, 16, 7, 6, 11, 3, 13, 5, 15, 8, 1, 0, 17, 12, 4, 10]);
    expect(Array.from(shuffledOrder(1, 10))).toEqual([6, 8, 9, 7, 5, 3, 0, 4, 1, 2]);
    expect(Array.from(shuffledOrder(0, 20))).toEqual([10, 18, 16, 14, 0, 17, 11, 2, 3, 9, 5, 7, 4, 19, 6, 15, 8, 1, 13, 12]);
    // a seed wider than 32 bits seeds Python's generator with two words
    expect(Array.from(shuffledOrder(123456789012, 30)).slice(0, 10)).toEqual([18, 17, 3, 11, 24, 10, 28, 9, 1, 26]);
    const big = shuffledOrder(1, 5000);
    expect(Array.from(big.subarray(0, 8))).toEqual([1154, 2818, 409, 1116, 1872, 4822, 2572, 1287]);
    expect(new Set(big).size).toBe(5000);
  });

  it('seeds each record by (seed, copy, image) alone', () => {
    const seeds = new Set<number>();
    for (let c = 0; c < 50; c++) for (let i = 0; i < 200; i++) seeds.add(recordSeed(1, c, i));
    expect(seeds.size).toBe(10000);
    expect(recordSeed(1, 2, 3)).toBe(recordSeed(1, 2, 3));
    expect(recordSeed(2, 2, 3)).not.toBe(recordSeed(1, 2, 3));
    expect(recordSeed(2 ** 40 + 1, 2, 3)).not.toBe(recordSeed(1, 2, 3));
  });
});

describe('augCopy', () => {
  it('writes <name>_aug<N> unlabel, label, map and test files in the original\'s order', async () => {
    const r = await augCopy(base({ augment: 'none' }));
    expect(r).toMatchObject({ name: 'toy_aug3.1@4', sourceRecords: 6, records: 18, workers: 0 });
    expect(r.unlabelPath).toBe(ssl(tmp, 'toy_aug3.1@4-unlabel.tfrecord'));
    expect(r.testPath).toBe(path.join(tmp, 'toy_aug3-test.tfrecord'));
    const src = readAllRecords(ssl(tmp, 'toy.1@4-unlabel.tfrecord'));
    const out = readAllRecords(r.unlabelPath);
    expect(out).toHaveLength(18);
    const order = shuffledOrder(1, 18);
    for (let k = 0; k < 18; k++) {
      // with 'none' each record is its source image re-encoded: same pixels, same label
      const a = decodeImageExample(out[k]);
      const b = decodeImageExample(src[order[k] % 6]);
      expect(a.label).toBe(b.label);
      expect(Buffer.from((await decodeImage(a.image)).data).equals(Buffer.from((await decodeImage(b.image)).data))).toBe(true);
    }
    expect(bytes(r.labelPath).equals(bytes(ssl(tmp, 'toy.1@4-label.tfrecord')))).toBe(true);
    expect(bytes(r.testPath).equals(bytes(path.join(tmp, 'toy-test.tfrecord')))).toBe(true);
    const srcMap = JSON.parse(fs.readFileSync(ssl(tmp, 'toy.1@4-map.json'), 'utf8'));
    const mapText = fs.readFileSync(r.mapPath!, 'utf8');
    const unlabel = Array.from(order, (e) => srcMap.unlabel[e % 6]);
    // the same text Python's json.dumps(indent=2, sort_keys=True) writes
    expect(mapText).toBe(JSON.stringify({ label: srcMap.label, unlabel }, null, 2));
    // nothing else left behind
    expect(fs.readdirSync(path.join(tmp, 'SSL')).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('augments every record with its own draw, labels kept', async () => {
    const r = await augCopy(base({ copies: 20, augment: 'cutout' }));
    const out = readAllRecords(r.unlabelPath);
    const src = readAllRecords(ssl(tmp, 'toy.1@4-unlabel.tfrecord'));
    const order = shuffledOrder(1, 120);
    let erased = 0;
    const distinct = new Set<string>();
    for (let k = 0; k < out.length; k++) {
      const a = decodeImageExample(out[k]);
      const b = decodeImageExample(src[order[k] % 6]);
      expect(a.label).toBe(b.label);
      const pa = (await decodeImage(a.image)).data;
      const pb = (await decodeImage(b.image)).data;
      if (!Buffer.from(pa).equals(Buffer.from(pb))) erased++;
      distinct.add(Buffer.from(pa).toString('hex'));
    }
    // p = 0.3 per record, independently
    expect(erased).toBeGreaterThan(20);
    expect(erased).toBeLessThan(60);
    expect(distinct.size).toBeGreaterThan(erased);
  });

  it('is byte-identical when re-run with the same seed, and differs with another', async () => {
    const files = ['toy_aug3.1@4-unlabel.tfrecord', 'toy_aug3.1@4-map.json'].map((f) => ssl(tmp, f));
    await augCopy(base({ augment: 'randaugment' }));
    const first = files.map(bytes);
    await augCopy(base({ augment: 'randaugment', force: true, chunk: 5 }));
    files.forEach((f, i) => expect(bytes(f).equals(first[i])).toBe(true));
    await augCopy(base({ augment: 'randaugment', force: true, seed: 2 }));
    expect(bytes(files[0]).equals(first[0])).toBe(false);
  });

  it('--keep-original adds each source record unchanged', async () => {
    const r = await augCopy(base({ keepOriginal: true, copies: 2, augment: 'randaugment' }));
    expect(r.records).toBe(18);
    const out = readAllRecords(r.unlabelPath).map((x) => Buffer.from(x).toString('hex'));
    const src = readAllRecords(ssl(tmp, 'toy.1@4-unlabel.tfrecord')).map((x) => Buffer.from(x).toString('hex'));
    for (const s of src) expect(out.filter((o) => o === s)).toHaveLength(1);
  });

  it('works on grey images and with every augmentation', async () => {
    const grey = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-aug-copy-grey-'));
    try {
      await toySplit(grey, 1);
      for (const augment of ['cifar10', 'svhn', 'stl10', 'color', 'cutout', 'randaugment', 'ctaugment', 'cifar10+ctaugment']) {
        const r = await augCopy({ root: grey, dataset: 'toy.1@4', copies: 2, augment, workers: 1, force: true });
        const img = await decodeImage(decodeImageExample(readAllRecords(r.unlabelPath)[0]).image);
        expect(img).toMatchObject({ height: H, width: W, channels: 1 });
      }
    } finally {
      fs.rmSync(grey, { recursive: true, force: true });
    }
  });

  it('gives what training loads as <name>_aug<N>.<seed>@<size>-<valid>', async () => {
    await augCopy(base({ copies: 2 }));
    const data = await loadTrainingData(tmp, 'toy_aug2.1@4-3', { unlabeled: true });
    expect(data).toMatchObject({ base: 'toy', name: 'toy_aug2.1@4-3' });
    expect(data.labeled.count).toBe(4);
    expect(data.valid.count).toBe(3);
    expect(data.unlabeled!.count).toBe(9);
    expect(data.test.count).toBe(3);
  });
});

describe('aug-copy errors', () => {
  it('names the valid augmentations, the bad copies, the missing split, an existing output', async () => {
    expect((await userError(augCopy(base({ augment: 'blur' })))).message).toMatch(/unknown augmentation 'blur'; valid: none, cifar10, .*randaugment, ctaugment/);
    expect((await userError(augCopy(base({ copies: 0 })))).message).toMatch(/--copies must be a whole number of at least 1, got 0/);
    expect((await userError(augCopy(base({ dataset: 'toy.2@4' })))).message).toMatch(
      /missing source split file .*toy\.2@4-unlabel\.tfrecord; create it with: ssl create-split --dataset toy --seed 2 --size 4/,
    );
    expect((await userError(augCopy(base({ dataset: 'toy.1@4-5' })))).message).toMatch(/bad split name/);
    const test = path.join(tmp, 'toy-test.tfrecord');
    fs.renameSync(test, `${test}.away`);
    expect((await userError(augCopy(base()))).message).toMatch(/missing test file .*toy-test\.tfrecord .*ssl create-datasets toy/);
    fs.renameSync(`${test}.away`, test);
    await augCopy(base({ copies: 1 }));
    expect((await userError(augCopy(base({ copies: 1 })))).message).toMatch(/toy_aug1\.1@4 already exists .*pass --force/);
  });

  it('leaves no output, partial or temporary, when a record cannot be augmented', async () => {
    const unlabel = ssl(tmp, 'toy.1@4-unlabel.tfrecord');
    const recs = readAllRecords(unlabel);
    recs[4] = encodeImageExample(Uint8Array.from([1, 2, 3, 4]), 0);
    writeRecords(unlabel, recs);
    const before = fs.readdirSync(path.join(tmp, 'SSL')).sort();
    const err = await userError(augCopy(base({ chunk: 2 })));
    expect(err.message).toMatch(/toy\.1@4-unlabel\.tfrecord: record 4 cannot be augmented \(cannot decode image/);
    expect(fs.readdirSync(path.join(tmp, 'SSL')).sort()).toEqual(before);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('aug') || f.startsWith('.'))).toEqual([]);
  });

  it('stops on an abort signal, leaving nothing', async () => {
    const c = new AbortController();
    c.abort();
    expect((await userError(augCopy(base({ signal: c.signal })))).message).toMatch(/interrupted; no output was written/);
    expect(fs.readdirSync(path.join(tmp, 'SSL')).filter((f) => f.includes('aug') || f.startsWith('.'))).toEqual([]);
  });
});

describe('the aug-copy command', () => {
  it('parses flags, has the make-aug-copy alias, and reports the files', async () => {
    const program = new Command().exitOverride();
    register(program);
    const lines: string[] = [];
    const cmd = program.commands.find((c) => c.name() === 'aug-copy')!;
    expect(cmd.aliases()).toEqual(['make-aug-copy']);
    const help = cmd.helpInformation();
    for (const flag of ['--dataset', '--copies', '--augment', '--seed', '--keep-original', '--workers', '--data-dir', '--force']) expect(help).toContain(flag);
    const r = await runAugCopy({ dataset: 'toy.1@4', copies: 2, augment: 'svhn', seed: 1, keepOriginal: false, workers: 1, dataDir: tmp, force: false }, (l) => lines.push(l));
    expect(r.records).toBe(12);
    expect(lines[0]).toMatch(/^toy_aug2\.1@4: 12 records \(2 × 6\), augment svhn, seed 1, in-thread$/);
    expect(lines).toContain(`  ${path.join(tmp, 'toy_aug2-test.tfrecord')}`);
  });

  it('runs through commander under its alias', async () => {
    const program = new Command().exitOverride();
    register(program);
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      await program.parseAsync(['node', 'ssl', 'make-aug-copy', '--dataset', 'toy.1@4', '--copies', '2', '--augment', 'none', '--workers', '1', '--data-dir', tmp]);
    } finally {
      log.mockRestore();
    }
    expect(readAllRecords(ssl(tmp, 'toy_aug2.1@4-unlabel.tfrecord'))).toHaveLength(12);
  });
});
