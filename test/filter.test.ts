import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { register, runFilter } from '../src/commands/filter';
import { createSplit } from '../src/data/create-split';
import { decodeImageExample, decodeLabel, encodeImageExample } from '../src/data/example';
import { decodeExampleFeatures, encodeExampleFeatures } from '../src/data/example-generic';
import { filterDataset, FilterOptions, OTHER_LABEL, parseClassList, withLabel } from '../src/data/filter';
import { encodePngSync } from '../src/data/png';
import { readAllRecords, writeRecords } from '../src/data/tfrecord';
import { UserError } from '../src/errors';
import { loadTrainingData } from '../src/train/dataset';

/** A 4x4 RGB PNG that differs for every (record, class). */
function png(i: number, label: number): Uint8Array {
  const px = new Uint8Array(4 * 4 * 3);
  for (let j = 0; j < px.length; j++) px[j] = (i * 37 + label * 11 + j * 5) & 0xff;
  return encodePngSync(px, 4, 4, 3);
}

/** Records of a class-interleaved file: per class `perClass` records, labels 0..nclass-1 in turn. */
function records(perClass: number, nclass = 10, offset = 0): Uint8Array[] {
  return Array.from({ length: perClass * nclass }, (_, i) => encodeImageExample(png(offset + i, i % nclass), i % nclass));
}

const labelsOf = (file: string): number[] => readAllRecords(file).map((r) => decodeLabel(r));

function countBy(xs: number[]): Record<number, number> {
  const o: Record<number, number> = {};
  for (const x of xs) o[x] = (o[x] ?? 0) + 1;
  return o;
}

function userError(f: () => unknown): UserError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected a UserError');
}

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-filter-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const opts = (o: Partial<FilterOptions> & Pick<FilterOptions, 'input' | 'output' | 'classes'>): FilterOptions => ({ root, unlabelClasses: [], ...o });

describe('filter one file', () => {
  it('keeps the listed classes byte for byte, beside the input, as filter_dataset does', () => {
    const input = path.join(root, 'SSL', 'toy.1@20-label.tfrecord');
    const recs = records(2);
    writeRecords(input, recs);
    const r = filterDataset(opts({ input, output: 'toy6.1@20-label', classes: [2, 3, 4, 5, 6, 7] }));
    const out = path.join(root, 'SSL', 'toy6.1@20-label.tfrecord');
    expect(r.files).toEqual([expect.objectContaining({ output: out, read: 20, written: 12, perClass: { 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 2 } })]);
    const kept = recs.filter((_, i) => i % 10 >= 2 && i % 10 <= 7);
    expect(fs.readFileSync(out).equals(fs.readFileSync((writeRecords(path.join(root, 'expected.tfrecord'), kept), path.join(root, 'expected.tfrecord'))))).toBe(true);
    expect(r.remapPath).toBeUndefined();
  });

  it('takes --output as a path when it has a directory, and refuses to overwrite', () => {
    const input = path.join(root, 'in.tfrecord');
    writeRecords(input, records(1));
    const out = path.join(root, 'elsewhere', 'picked.tfrecord');
    filterDataset(opts({ input, output: out, classes: [0] }));
    expect(labelsOf(out)).toEqual([0]);
    expect(userError(() => filterDataset(opts({ input, output: out, classes: [1] }))).message).toMatch(/picked\.tfrecord already exists.*--force/);
    filterDataset(opts({ input, output: out, classes: [1], force: true }));
    expect(labelsOf(out)).toEqual([1]);
    expect(userError(() => filterDataset(opts({ input, output: 'in', classes: [1] }))).message).toMatch(/input file itself/);
  });

  it('--remap renumbers in the listed order, rewriting only the label, and writes the mapping', () => {
    const input = path.join(root, 'in.tfrecord');
    const recs = records(1);
    writeRecords(input, recs);
    const r = filterDataset(opts({ input, output: 'out', classes: [7, 2, 5], remap: true }));
    const out = readAllRecords(path.join(root, 'out.tfrecord'));
    expect(out.map((x) => decodeLabel(x))).toEqual([1, 2, 0]); // file order 2, 5, 7
    // the same bytes TensorFlow's deterministic serialization gives for (image, new label)
    expect(Buffer.from(out[0]).equals(Buffer.from(encodeImageExample(decodeImageExample(recs[2]).image, 1)))).toBe(true);
    expect(r.remapPath).toBe(path.join(root, 'out-remap.json'));
    expect(JSON.parse(fs.readFileSync(r.remapPath!, 'utf8'))).toEqual({ classes: [7, 2, 5], old_to_new: { 7: 0, 2: 1, 5: 2 } });
  });

  it('withLabel keeps every other feature', () => {
    const rec = encodeExampleFeatures({ image: { kind: 'bytes_list', values: [Uint8Array.of(1, 2)] }, label: { kind: 'int64_list', values: [4] }, id: { kind: 'int64_list', values: [99] } });
    const f = decodeExampleFeatures(withLabel(rec, 0));
    expect(f.label).toEqual({ kind: 'int64_list', values: [0] });
    expect(f.id).toEqual({ kind: 'int64_list', values: [99] });
  });
});

describe('filter a base dataset', () => {
  it('filters every subset present; remapped, it can be split like any dataset', async () => {
    writeRecords(path.join(root, 'toy-train.tfrecord'), records(6));
    writeRecords(path.join(root, 'toy-test.tfrecord'), records(2, 10, 100));
    const r = filterDataset(opts({ input: 'toy', output: 'toy3', classes: [8, 1, 4], remap: true }));
    expect(r.files.map((f) => [f.role, path.basename(f.output), f.written])).toEqual([
      ['train', 'toy3-train.tfrecord', 18],
      ['test', 'toy3-test.tfrecord', 6],
    ]);
    expect(countBy(labelsOf(path.join(root, 'toy3-test.tfrecord')))).toEqual({ 0: 2, 1: 2, 2: 2 });
    const s = await createSplit({ root, dataset: 'toy3', seed: 1, size: 6 });
    expect(s.labelCounts).toEqual([2, 2, 2]);
  });

  it("leaves a custom dataset's unlabelled file alone unless --unlabel-classes asks", () => {
    writeRecords(path.join(root, 'mine-train.tfrecord'), records(2, 3));
    writeRecords(path.join(root, 'mine-unlabel.tfrecord'), [encodeImageExample(png(0, 0), -1), encodeImageExample(png(1, 0), 1)]);
    const r = filterDataset(opts({ input: 'mine', output: 'mine2', classes: [1, 2] }));
    expect(r.files.map((f) => f.role)).toEqual(['train']);
    expect(r.skipped).toEqual([path.join(root, 'mine-unlabel.tfrecord')]);
    const all = filterDataset(opts({ input: 'mine', output: 'mine3', classes: [1, 2], unlabelClasses: [1] }));
    expect(all.files.map((f) => [f.role, f.written])).toEqual([['train', 4], ['unlabel', 1]]);
  });
});

describe('filter a split', () => {
  async function split(seed = 1, size = 30): Promise<void> {
    if (!fs.existsSync(path.join(root, 'toy-train.tfrecord'))) {
      writeRecords(path.join(root, 'toy-train.tfrecord'), records(12));
      writeRecords(path.join(root, 'toy-test.tfrecord'), records(3, 10, 500));
    }
    await createSplit({ root, dataset: 'toy', seed, size });
  }

  it('writes label, unlabel, test and map under the new name, ready to train', async () => {
    await split();
    const r = filterDataset(opts({ input: 'toy.1@30', output: 'toy6', classes: [2, 3, 4, 5, 6, 7] }));
    expect(r.kind).toBe('split');
    expect(r.name).toBe('toy6.1@30');
    expect(r.files.map((f) => [f.role, path.relative(root, f.output), f.read, f.written])).toEqual([
      ['labelled', 'SSL/toy6.1@30-label.tfrecord', 30, 18],
      ['unlabelled', 'SSL/toy6.1@30-unlabel.tfrecord', 90, 54],
      ['test', 'toy6-test.tfrecord', 30, 18],
    ]);
    // the map keeps the source positions of the kept records, in file order
    const src = JSON.parse(fs.readFileSync(path.join(root, 'SSL', 'toy.1@30-map.json'), 'utf8'));
    const map = JSON.parse(fs.readFileSync(r.mapPath!, 'utf8'));
    const base = labelsOf(path.join(root, 'toy-train.tfrecord'));
    expect(map.label).toEqual(src.label.filter((p: number) => base[p] >= 2 && base[p] <= 7));
    expect(map.unlabel).toEqual(src.unlabel.filter((p: number) => base[p] >= 2 && base[p] <= 7));
    expect(labelsOf(path.join(root, 'SSL', 'toy6.1@30-unlabel.tfrecord'))).toEqual(map.unlabel.map((p: number) => base[p]));

    const data = await loadTrainingData(root, 'toy6.1@30-6', { unlabeled: true });
    expect([data.labeled.count, data.valid.count, data.unlabeled!.count, data.test.count]).toEqual([18, 6, 48, 18]);
    expect(data.nclass).toBe(8); // labels stay 2..7, as in the original
  });

  it('shares the test file across seeds, and refuses to change it silently', async () => {
    await split(1);
    await split(2);
    filterDataset(opts({ input: 'toy.1@30', output: 'toy6', classes: [2, 3, 4, 5, 6, 7], remap: true }));
    const r2 = filterDataset(opts({ input: 'toy.2@30', output: 'toy6', classes: [2, 3, 4, 5, 6, 7], remap: true }));
    expect(r2.files[2]).toMatchObject({ role: 'test', unchanged: true, written: 18 });
    expect(userError(() => filterDataset(opts({ input: 'toy.2@30-1', output: 'toy6', classes: [2, 3], force: false }))).message).toMatch(
      /toy6\.2@30-label\.tfrecord.*already exist.*--force/,
    );
    fs.rmSync(path.join(root, 'SSL', 'toy6.2@30-label.tfrecord'));
    fs.rmSync(path.join(root, 'SSL', 'toy6.2@30-unlabel.tfrecord'));
    fs.rmSync(path.join(root, 'SSL', 'toy6.2@30-map.json'));
    expect(userError(() => filterDataset(opts({ input: 'toy.2@30', output: 'toy6', classes: [2, 3] }))).message).toMatch(/toy6-test\.tfrecord exists with other records/);
    expect(fs.existsSync(path.join(root, 'SSL', 'toy6.2@30-label.tfrecord'))).toBe(false);
    expect(userError(() => filterDataset(opts({ input: 'toy.2@30', output: 'toy6', classes: [2, 3, 4, 5, 6, 7] }))).message).toMatch(/toy6-test\.tfrecord exists with other records/);
  });

  it('keeps other classes in the unlabelled file; remapped, they get OTHER_LABEL', async () => {
    await split();
    const r = filterDataset(opts({ input: 'toy.1@30', output: 'mm', classes: [2, 3, 4, 5, 6, 7], unlabelClasses: [0, 1, 6, 7], remap: true }));
    const unlabel = labelsOf(r.files[1].output);
    // labelled classes first (validation comes from the head), each group in its original order
    expect(unlabel.slice(0, 18).every((l) => l === 4 || l === 5)).toBe(true);
    expect(unlabel.slice(18)).toEqual(new Array(18).fill(OTHER_LABEL));
    const src = JSON.parse(fs.readFileSync(path.join(root, 'SSL', 'toy.1@30-map.json'), 'utf8')).unlabel as number[];
    const base = labelsOf(path.join(root, 'toy-train.tfrecord'));
    const map = JSON.parse(fs.readFileSync(r.mapPath!, 'utf8')).unlabel as number[];
    expect(map).toEqual([...src.filter((q) => base[q] === 6 || base[q] === 7), ...src.filter((q) => base[q] === 0 || base[q] === 1)]);
    expect(r.files[1].perClass).toEqual({ 0: 9, 1: 9, 6: 9, 7: 9 });
    expect(JSON.parse(fs.readFileSync(r.remapPath!, 'utf8'))).toEqual({
      classes: [2, 3, 4, 5, 6, 7],
      old_to_new: { 2: 0, 3: 1, 4: 2, 5: 3, 6: 4, 7: 5 },
      unlabel_classes: [0, 1, 6, 7],
      other_classes: [0, 1],
      other_label: OTHER_LABEL,
    });
    const data = await loadTrainingData(root, 'mm.1@30-3', { unlabeled: true });
    expect(data.nclass).toBe(6);
  });
});

describe('filter errors', () => {
  it('parses class lists strictly', () => {
    expect(parseClassList('2, 3,4', '--classes')).toEqual([2, 3, 4]);
    expect(userError(() => parseClassList('2,x', '--classes')).message).toMatch(/--classes must be a comma-separated list/);
    expect(userError(() => parseClassList('', '--classes')).message).toMatch(/comma-separated/);
    expect(userError(() => parseClassList('1,1', '--classes')).message).toMatch(/class 1 twice/);
  });

  it('names what is missing or wrong', () => {
    writeRecords(path.join(root, 'in.tfrecord'), records(1));
    expect(userError(() => filterDataset(opts({ input: 'nope.1@5', output: 'x', classes: [1] }))).message).toMatch(/nope\.1@5-label\.tfrecord.*ssl create-split/);
    expect(userError(() => filterDataset(opts({ input: 'nope', output: 'x', classes: [1] }))).message).toMatch(/no files of dataset nope/);
    expect(userError(() => filterDataset(opts({ input: path.join(root, 'in.tfrecord'), output: 'x', classes: [1], unlabelClasses: [2] }))).message).toMatch(/--unlabel-classes applies to a split/);
    writeRecords(path.join(root, 'toy-train.tfrecord'), records(1));
    expect(userError(() => filterDataset(opts({ input: 'toy', output: 'bad-name', classes: [1] }))).message).toMatch(/--output must be a dataset name/);
    expect(userError(() => filterDataset(opts({ input: 'toy', output: 'toy', classes: [1] }))).message).toMatch(/input's own name/);
  });
});

describe('ssl filter command', () => {
  const program = (): Command => {
    const p = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    register(p);
    return p;
  };

  it('documents every option with its default', () => {
    const help = program().commands[0].helpInformation();
    expect(help).toMatch(/--input <file\|name>.*required/s);
    expect(help).toMatch(/--output <name>.*required/s);
    expect(help).toMatch(/--classes <list>.*required unless --mismatch/s);
    expect(help).toMatch(/--unlabel-classes <list>.*default: --classes/s);
    expect(help).toMatch(/--mismatch <percent>.*25: 0,5,6,7.*default: off/s);
    expect(help).toMatch(/--remap.*default:\s+labels\s+and\s+order\s+kept/s);
    expect(help).toMatch(/--force.*\(default: false\)/s);
  });

  it('runs through commander and prints counts; --mismatch conflicts with --classes', async () => {
    writeRecords(path.join(root, 'toy-train.tfrecord'), records(12));
    writeRecords(path.join(root, 'toy-test.tfrecord'), records(3, 10, 500));
    await createSplit({ root, dataset: 'toy', seed: 1, size: 30 });
    const lines: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
    try {
      await program().parseAsync(['filter', '--input', 'toy.1@30', '--mismatch', '50', '--remap', '--output', 'toy6_mismatch50', '--data-dir', root], { from: 'user' });
    } finally {
      jest.restoreAllMocks();
    }
    expect(lines[0]).toBe('Kept classes 2,3,4,5,6,7; unlabelled: 0,1,6,7 (50% outside the labelled classes)');
    expect(lines).toContain('  unlabelled: 90 -> 36 records [0:9 1:9 6:9 7:9]');
    expect(lines[lines.length - 1]).toBe('Train on it as toy6_mismatch50.1@30-<valid>, e.g. ssl train --dataset toy6_mismatch50.1@30-1');
    expect(() => runFilter({ input: 'toy.1@30', output: 'x', mismatch: 25, classes: '1', remap: false, force: false, dataDir: root }, () => undefined)).toThrow(/either --mismatch or --classes/);
    expect(() => runFilter({ input: 'toy.1@30', output: 'x', mismatch: 30, remap: false, force: false, dataDir: root }, () => undefined)).toThrow(/--mismatch must be one of 0, 25, 50, 75, 100/);
    expect(() => runFilter({ input: 'toy.1@30', output: 'x', remap: false, force: false, dataDir: root }, () => undefined)).toThrow(/pass --classes/);
  });
});
