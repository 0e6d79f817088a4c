import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { register } from '../src/commands/create-split';
import { createSplit, CreateSplitOptions, formatSplitMap } from '../src/data/create-split';
import { decodeImageExample, encodeImageExample } from '../src/data/example';
import { frameRecord, readAllRecords, writeRecords } from '../src/data/tfrecord';
import { UserError } from '../src/errors';

interface SelectionFixture {
  labels: Record<string, number[]>;
  cases: Array<{ labels_name: string; seed: number; size: number; label: number[]; unlabel: number[] }>;
}
interface RealmixFixture {
  cases: Array<{ labels_name: string; seed: number; size: number; options: Record<string, unknown>; label: number[]; unlabel: number[] }>;
}
const load = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8'));
const selection = load<SelectionFixture>('split-selection.json');
const realmix = load<RealmixFixture>('split-realmix.json');

/**
 * Stand-in image bytes: records are copied, never decoded, so any bytes do. Sizes vary up to
 * ~12 kB so that the inputs span several of the reader's 1 MiB windows.
 */
function fakeImage(pos: number): Uint8Array {
  const len = 8 + ((pos * 7919) % 12000);
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (pos * 31 + i) & 0xff;
  b[0] = 0x89; // PNG's first byte, for anyone inspecting the files
  return b;
}

/** Writes labels as records split over several files; returns the file paths and each record's payload. */
function buildDataset(dir: string, files: Array<{ name: string; labels: number[] }>, startPos = 0): { paths: string[]; records: Uint8Array[] } {
  fs.mkdirSync(dir, { recursive: true });
  const records: Uint8Array[] = [];
  const paths: string[] = [];
  let pos = startPos;
  for (const f of files) {
    const recs = f.labels.map((y) => encodeImageExample(fakeImage(pos++), y));
    const p = path.join(dir, f.name);
    writeRecords(p, recs);
    records.push(...recs);
    paths.push(p);
  }
  return { paths, records };
}

const framed = (records: Uint8Array[], positions: number[]): Buffer => Buffer.concat(positions.map((p) => frameRecord(records[p])));

function splitFiles(root: string, name: string): string[] {
  return ['label.tfrecord', 'unlabel.tfrecord', 'map.json'].map((s) => path.join(root, 'SSL', `${name}-${s}`));
}

async function userError(p: Promise<unknown>): Promise<UserError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-create-split-'));
});
afterEach(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('createSplit', () => {
  const labels = selection.labels['imbalanced-400'];
  const reference = selection.cases.find((c) => c.labels_name === 'imbalanced-400' && c.seed === 1)!;
  // Two inputs, so that positions must run on across files, as in svhn-train + svhn-extra.
  const build = (root: string) =>
    buildDataset(root, [
      { name: 'toy-train.tfrecord', labels: labels.slice(0, 150) },
      { name: 'toy-extra.tfrecord', labels: labels.slice(150) },
    ]);

  it('writes the reference split: positions, record bytes and map.json text', async () => {
    const { paths, records } = build(tmp);
    const r = await createSplit({ root: tmp, dataset: 'toy', seed: reference.seed, size: reference.size, inputs: paths });
    const [labelPath, unlabelPath, mapPath] = splitFiles(tmp, `toy.${reference.seed}@${reference.size}`);
    expect(r).toMatchObject({ labelPath, unlabelPath, mapPath, labelCount: 40, unlabelCount: 360, nclass: 10 });
    expect(r.labelCounts.reduce((a, b) => a + b, 0)).toBe(40);

    const map = fs.readFileSync(mapPath, 'utf8');
    expect(JSON.parse(map)).toEqual({ label: reference.label, unlabel: reference.unlabel });
    expect(map).toBe(formatSplitMap(reference.label, reference.unlabel));
    expect(map.startsWith(`{\n  "label": [\n    ${reference.label[0]},\n    ${reference.label[1]},`)).toBe(true);

    // Whole files equal the input frames in the chosen order: nothing re-encoded.
    expect(fs.readFileSync(labelPath).equals(framed(records, reference.label))).toBe(true);
    expect(fs.readFileSync(unlabelPath).equals(framed(records, reference.unlabel))).toBe(true);
    expect(readAllRecords(labelPath).map((x) => decodeImageExample(x).label)).toEqual(reference.label.map((p) => labels[p]));
  });

  it('formats the map exactly as Python json.dumps(indent=2, sort_keys=True)', () => {
    // Strings printed by Python 3 for the same dicts.
    expect(formatSplitMap([1, 2], [0])).toBe('{\n  "label": [\n    1,\n    2\n  ],\n  "unlabel": [\n    0\n  ]\n}');
    expect(formatSplitMap([], [3, 1])).toBe('{\n  "label": [],\n  "unlabel": [\n    3,\n    1\n  ]\n}');
  });

  it('reads <root>/<dataset>-train.tfrecord by default', async () => {
    const { records } = buildDataset(tmp, [{ name: 'toy-train.tfrecord', labels }]);
    await createSplit({ root: tmp, dataset: 'toy', seed: 1, size: 40 });
    const [labelPath] = splitFiles(tmp, 'toy.1@40');
    expect(fs.readFileSync(labelPath).equals(framed(records, reference.label))).toBe(true);
  });

  it('refuses to overwrite an existing split unless forced, and --force rewrites the same bytes', async () => {
    const { paths } = build(tmp);
    const opts: CreateSplitOptions = { root: tmp, dataset: 'toy', seed: 2, size: 25, inputs: paths };
    await createSplit(opts);
    const files = splitFiles(tmp, 'toy.2@25');
    const before = files.map((f) => fs.readFileSync(f));
    expect((await userError(createSplit(opts))).message).toMatch(/toy\.2@25 already exists.*--force/);

    // A leftover part of a split counts too.
    fs.rmSync(files[0]);
    fs.rmSync(files[1]);
    expect((await userError(createSplit(opts))).message).toMatch(/already exists \(toy\.2@25-map\.json\)/);

    await createSplit({ ...opts, force: true });
    files.forEach((f, i) => expect(fs.readFileSync(f).equals(before[i])).toBe(true));
  });

  it('gives the same bytes when seeds run concurrently as when they run one after another', async () => {
    const a = path.join(tmp, 'concurrent');
    const b = path.join(tmp, 'serial');
    const inputsA = build(a).paths;
    const inputsB = build(b).paths;
    const seeds = [1, 2, 3];
    const turns: number[] = [];
    await Promise.all(
      seeds.map((seed) => createSplit({ root: a, dataset: 'toy', seed, size: 40, inputs: inputsA, onProgress: () => turns.push(seed) })),
    );
    // The runs really overlapped: progress events of different seeds alternate.
    expect(turns).not.toEqual([...turns].sort());
    for (const seed of seeds) await createSplit({ root: b, dataset: 'toy', seed, size: 40, inputs: inputsB });
    for (const seed of seeds) {
      const fb = splitFiles(b, `toy.${seed}@40`);
      // Buffer.equals: jest's deep equality is far too slow on megabytes.
      splitFiles(a, `toy.${seed}@40`).forEach((f, i) => expect(fs.readFileSync(f).equals(fs.readFileSync(fb[i]))).toBe(true));
    }
    // Only finished files, no temporaries left behind.
    expect(fs.readdirSync(path.join(a, 'SSL')).sort()).toEqual(fs.readdirSync(path.join(b, 'SSL')).sort());
    expect(fs.readdirSync(path.join(a, 'SSL'))).toHaveLength(9);
  });

  it('passes RealMix --label-size and --class-balance through', async () => {
    for (const c of realmix.cases.filter((x) => x.labels_name === 'imbalanced-400' && !x.options.stl10)) {
      const root = path.join(tmp, `case-${c.seed}-${c.size}`);
      const { paths } = build(root);
      const o = c.options as { custom?: boolean; label_size?: number; class_balance?: boolean };
      await createSplit({
        root, dataset: 'toy', seed: c.seed, size: c.size, inputs: paths,
        labelSize: o.custom ? o.label_size : undefined, classBalance: o.class_balance,
      });
      const map = JSON.parse(fs.readFileSync(splitFiles(root, `toy.${c.seed}@${c.size}`)[2], 'utf8'));
      expect(map).toEqual({ label: c.label, unlabel: c.unlabel });
    }
  });

  describe('a custom dataset with its unlabelled file', () => {
    const train = Array.from({ length: 50 }, (_, i) => i % 10);
    const extra = realmix.cases.find((c) => c.labels_name === 'stl10-like-150' && c.options.custom)!;
    const build = (root: string, placeholder = 0) =>
      buildDataset(root, [
        { name: 'mine-train.tfrecord', labels: train },
        { name: 'mine-unlabel.tfrecord', labels: new Array<number>(100).fill(placeholder) },
      ]);

    it('joins <dataset>-unlabel.tfrecord by default: the split of RealMix custom_extra + --custom', async () => {
      const { records } = build(tmp);
      const r = await createSplit({ root: tmp, dataset: 'mine', seed: extra.seed, size: extra.size });
      expect(r).toMatchObject({ labelCount: extra.size, unlabelCount: 150 - extra.size, unlabelFile: path.join(tmp, 'mine-unlabel.tfrecord'), unlabelFileRecords: 100 });
      expect(JSON.parse(fs.readFileSync(r.mapPath, 'utf8'))).toEqual({ label: extra.label, unlabel: extra.unlabel });
      expect(fs.readFileSync(r.unlabelPath).equals(framed(records, extra.unlabel))).toBe(true);
    });

    it('puts classless placeholders last, and can be named or turned off', async () => {
      build(tmp, -1);
      const r = await createSplit({ root: tmp, dataset: 'mine', seed: 3, size: 20 });
      const unlabel: number[] = JSON.parse(fs.readFileSync(r.mapPath, 'utf8')).unlabel;
      expect(unlabel.slice(0, 30).every((p) => p < 50)).toBe(true);
      expect(unlabel.slice(30)).toEqual(Array.from({ length: 100 }, (_, i) => 50 + i));

      const off = await createSplit({ root: tmp, dataset: 'mine', seed: 3, size: 20, unlabelFile: false, force: true });
      expect(off).toMatchObject({ unlabelCount: 30, unlabelFileRecords: 0, unlabelFile: undefined });

      const inputs = [path.join(tmp, 'mine-train.tfrecord')];
      const named = await createSplit({ root: tmp, dataset: 'mine', seed: 3, size: 20, inputs, unlabelFile: path.join(tmp, 'mine-unlabel.tfrecord'), force: true });
      expect(JSON.parse(fs.readFileSync(named.mapPath, 'utf8')).unlabel).toEqual(unlabel);
      // explicit inputs alone: no unlabelled file is guessed
      expect((await createSplit({ root: tmp, dataset: 'mine', seed: 3, size: 20, inputs, force: true })).unlabelCount).toBe(30);
    });

    it('refuses --label-size beyond the labelled input and a size larger than it', async () => {
      build(tmp);
      expect((await userError(createSplit({ root: tmp, dataset: 'mine', seed: 1, size: 10, labelSize: 60 }))).message).toMatch(/--label-size 60.*50 records/);
      expect((await userError(createSplit({ root: tmp, dataset: 'mine', seed: 1, size: 51 }))).message).toMatch(/never labelled/);
      expect(fs.existsSync(path.join(tmp, 'SSL'))).toBe(false);
    });
  });

  describe('STL-10 rules', () => {
    const stlLike = realmix.cases.find((c) => c.labels_name === 'stl10-like-150' && c.seed === 1)!;
    const stlTrain = Array.from({ length: 50 }, (_, i) => i % 10);
    const stlUnlabeled = new Array<number>(100).fill(0);

    it('uses equal class weights when the first input is an stl10 file', async () => {
      const { paths } = buildDataset(tmp, [
        { name: 'stl10-train.tfrecord', labels: stlTrain },
        { name: 'stl10-unlabeled.tfrecord', labels: stlUnlabeled },
      ]);
      await createSplit({ root: tmp, dataset: 'stl10', seed: 1, size: 20, inputs: paths });
      const map = JSON.parse(fs.readFileSync(splitFiles(tmp, 'stl10.1@20')[2], 'utf8'));
      expect(map).toEqual({ label: stlLike.label, unlabel: stlLike.unlabel });
    });

    it('defaults to stl10-train + stl10-unlabeled, and at size 1000 takes line <seed> of the fold file', async () => {
      const train = Array.from({ length: 1200 }, (_, i) => i % 10);
      buildDataset(tmp, [
        { name: 'stl10-train.tfrecord', labels: train },
        { name: 'stl10-unlabeled.tfrecord', labels: stlUnlabeled },
      ]);
      const fold = (line: number) => Array.from({ length: 1000 }, (_, i) => (i * 7 + line) % 1200);
      fs.writeFileSync(path.join(tmp, 'stl10_fold_indices.txt'), [0, 1, 2].map((l) => fold(l).join(' ') + ' ').join('\n') + '\n');
      const r = await createSplit({ root: tmp, dataset: 'stl10', seed: 2, size: 1000 });
      expect(r.unlabelCount).toBe(1300 - 1000);
      const map = JSON.parse(fs.readFileSync(r.mapPath, 'utf8'));
      expect(map.label).toEqual([...fold(2)].sort((a, b) => a - b));
      expect([...map.label, ...map.unlabel].sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: 1300 }, (_, i) => i));

      expect((await userError(createSplit({ root: tmp, dataset: 'stl10', seed: 5, size: 1000 }))).message).toMatch(/no fold on line 5/);
      fs.rmSync(path.join(tmp, 'stl10_fold_indices.txt'));
      expect((await userError(createSplit({ root: tmp, dataset: 'stl10', seed: 1, size: 1000 }))).message).toMatch(
        /stl10_fold_indices\.txt.*ssl create-datasets stl10/,
      );
    });
  });

  describe('errors', () => {
    it('names a missing input and the command that makes it', async () => {
      const e = await userError(createSplit({ root: tmp, dataset: 'svhn', seed: 1, size: 10 }));
      expect(e.message).toContain(path.join(tmp, 'svhn-train.tfrecord'));
      expect(e.message).toContain('ssl create-datasets svhn');
    });

    it('refuses a size above the record count and a size of 0, before writing anything', async () => {
      const { paths } = build(tmp);
      expect((await userError(createSplit({ root: tmp, dataset: 'toy', seed: 1, size: 401, inputs: paths }))).message).toMatch(/401.*400 records/);
      expect((await userError(createSplit({ root: tmp, dataset: 'toy', seed: 1, size: 0, inputs: paths }))).message).toMatch(/--size/);
      expect(fs.existsSync(path.join(tmp, 'SSL'))).toBe(false);
    });

    it('refuses a dataset name that would not parse back as a split name', async () => {
      expect((await userError(createSplit({ root: tmp, dataset: 'my.data', seed: 1, size: 10 }))).message).toMatch(/my\.data/);
    });

    it('names the file and record of a record that is not an Example', async () => {
      const p = path.join(tmp, 'bad-train.tfrecord');
      writeRecords(p, [encodeImageExample(fakeImage(0), 0), new Uint8Array([0xff, 0xff, 0xff])]);
      const e = await userError(createSplit({ root: tmp, dataset: 'bad', seed: 1, size: 1 }));
      expect(e.message).toMatch(/bad-train\.tfrecord: record 1: .*ssl create-datasets bad/);
    });
  });
});

describe('ssl create-split command', () => {
  const program = (): Command => {
    const p = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    register(p);
    return p;
  };

  it('documents every option with its default', () => {
    const help = program().commands[0].helpInformation();
    expect(help).toMatch(/--seed <n>.*0 keeps file order.*\(default: 0\)/s);
    expect(help).toMatch(/--data-dir <dir>.*default: \$ML_DATA, else \.\/data/s);
    expect(help).toMatch(/--force.*\(default: false\)/s);
    expect(help).toMatch(/--label-size <n>.*default: off/s);
    expect(help).toMatch(/--class-balance.*\(default: false\)/s);
    expect(help).toMatch(/--unlabel-file <file>.*default: <data-dir>\/<dataset>-unlabel\.tfrecord/s);
    expect(help).toMatch(/--no-unlabel-file/);
    expect(help).toMatch(/--size <n>.*required/s);
  });

  it('parses options, writes the split and prints counts and paths', async () => {
    const labels = selection.labels['balanced-300'];
    const { paths } = buildDataset(tmp, [{ name: 'toy-train.tfrecord', labels }]);
    const lines: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      await program().parseAsync(['create-split', '--dataset', 'toy', '--seed', '2', '--size', '25', '--data-dir', tmp, ...paths], { from: 'user' });
    } finally {
      jest.restoreAllMocks();
    }
    expect(err).toHaveBeenCalled();
    const c = selection.cases.find((x) => x.labels_name === 'balanced-300' && x.seed === 2)!;
    const map = JSON.parse(fs.readFileSync(path.join(tmp, 'SSL', 'toy.2@25-map.json'), 'utf8'));
    expect(map).toEqual({ label: c.label, unlabel: c.unlabel });
    expect(lines[0]).toBe('Split toy.2@25: 25 labelled, 275 unlabelled, 10 classes');
    expect(lines.join('\n')).toContain(path.join(tmp, 'SSL', 'toy.2@25-unlabel.tfrecord'));
  });

  it('rejects a missing or non-positive --size before doing anything', async () => {
    await expect(program().parseAsync(['create-split', '--dataset', 'toy', '--data-dir', tmp], { from: 'user' })).rejects.toThrow(/--size/);
    await expect(program().parseAsync(['create-split', '--dataset', 'toy', '--size', '0'], { from: 'user' })).rejects.toThrow(/at least 1/);
    await expect(program().parseAsync(['create-split', '--dataset', 'toy', '--size', '5', '--seed', '-1'], { from: 'user' })).rejects.toThrow(/at least 0/);
  });
});
