import * as fs from 'fs';
import * as path from 'path';
import { selectSplit, SplitOptions } from '../src/data/split';
import { UserError } from '../src/errors';

/*
 * fixtures/split-selection.json is a copy of the shared reference (Google create_split);
 * fixtures/split-realmix.json holds the RealMix variants, made by the Python in its "generator"
 * field, which replays the reference selection logic (and reproduces every shared case too).
 */

interface SelectionFixture {
  labels: Record<string, number[]>;
  cases: Array<{ labels_name: string; seed: number; size: number; label: number[]; unlabel: number[] }>;
}
interface RealmixFixture {
  cases: Array<{
    labels_name: string;
    seed: number;
    size: number;
    options: { custom?: boolean; label_size?: number; class_balance?: boolean; stl10?: boolean; fold?: number[] };
    label: number[];
    unlabel: number[];
  }>;
}

const load = <T>(name: string): T => JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8'));
const selection = load<SelectionFixture>('split-selection.json');
const realmix = load<RealmixFixture>('split-realmix.json');
const labelLists: Record<string, number[]> = {
  ...selection.labels,
  'stl10-like-150': [...Array.from({ length: 50 }, (_, i) => i % 10), ...new Array<number>(100).fill(0)],
};

function countsOf(labels: number[], positions: number[], nclass: number): number[] {
  const out = new Array<number>(nclass).fill(0);
  for (const p of positions) out[labels[p]]++;
  return out;
}

describe('selectSplit reproduces the reference create_split', () => {
  it.each(selection.cases.map((c) => [c.labels_name, c.seed, c.size, c] as const))('%s seed %d size %d', (_n, _s, _z, c) => {
    const labels = selection.labels[c.labels_name];
    const got = selectSplit(labels, { seed: c.seed, size: c.size });
    expect(got.label).toEqual(c.label);
    expect(got.unlabel).toEqual(c.unlabel);
    expect(got.nclass).toBe(10);
    expect(got.labelCounts).toEqual(countsOf(labels, c.label, 10));
  });

  it.each(realmix.cases.map((c) => [c.labels_name, c.seed, c.size, JSON.stringify(c.options), c] as const))(
    'RealMix variant: %s seed %d size %d %s',
    (_n, _s, _z, _o, c) => {
      const o = c.options;
      const opts: SplitOptions = {
        seed: c.seed,
        size: c.size,
        allWeightsOne: o.stl10,
        foldIndices: o.fold,
        labelSize: o.custom ? o.label_size : undefined,
        classBalance: o.class_balance,
      };
      const got = selectSplit(labelLists[c.labels_name], opts);
      expect(got.label).toEqual(c.label);
      expect(got.unlabel).toEqual(c.unlabel);
    },
  );

  it('balanced data gives a class-balanced pick, remainder to the lowest classes', () => {
    const got = selectSplit(selection.labels['balanced-300'], { seed: 3, size: 25 });
    expect(got.labelCounts).toEqual([3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
  });

  it('every record lands in exactly one of the two sets', () => {
    const labels = selection.labels['imbalanced-400'];
    const got = selectSplit(labels, { seed: 9, size: 123 });
    expect([...got.label, ...got.unlabel].sort((a, b) => a - b)).toEqual(labels.map((_, i) => i));
  });

  it('accepts typed arrays of labels', () => {
    const c = selection.cases[0];
    const got = selectSplit(Int32Array.from(selection.labels[c.labels_name]), { seed: c.seed, size: c.size });
    expect(got.label).toEqual(c.label);
  });

  it('keeps picking when a class runs out under all-ones weights (the reference would crash)', () => {
    // Class 1 has a single record; equal weights would ask for it twice.
    const labels = [0, 0, 0, 0, 1, 2, 2, 2];
    const got = selectSplit(labels, { seed: 0, size: 6, allWeightsOne: true });
    expect(got.labelCounts).toEqual([3, 1, 2]);
  });

  it('handles an SVHN-sized input (600k records)', () => {
    const n = 600_000;
    const labels = new Int32Array(n);
    for (let i = 0; i < n; i++) labels[i] = (i * 7919) % 10;
    const got = selectSplit(labels, { seed: 1, size: 4000 });
    expect(got.unlabel.length).toBe(n - 4000);
    expect(got.labelCounts).toEqual(new Array(10).fill(400));
  }, 120_000);
});

describe('a separate unlabelled file (create-datasets custom)', () => {
  const train = Array.from({ length: 50 }, (_, i) => i % 10);
  // RealMix custom_extra: the unlabelled images follow the train images in one file, with label 0
  const extra = realmix.cases.find((c) => c.labels_name === 'stl10-like-150' && c.options.custom)!;

  it('joined after the inputs, it splits exactly as custom_extra with --custom --label_size <train count>', () => {
    const got = selectSplit(labelLists['stl10-like-150'], { seed: extra.seed, size: extra.size, unlabelledFrom: 50 });
    expect(got.label).toEqual(extra.label);
    expect(got.unlabel).toEqual(extra.unlabel);
  });

  it('never labels its records and leaves them out of the class weights', () => {
    const labels = [...train, ...new Array<number>(100).fill(3)];
    const got = selectSplit(labels, { seed: 2, size: 50, unlabelledFrom: 50 });
    expect(got.label).toEqual(train.map((_, i) => i));
    expect(got.labelCounts).toEqual(new Array(10).fill(5));
    expect(() => selectSplit(labels, { seed: 2, size: 51, unlabelledFrom: 50 })).toThrow(/51.*labelled input has 50 records/);
  });

  it('writes classless placeholders (-1, 255) after every other record, in file order', () => {
    const alone = selectSplit(train, { seed: 7, size: 12 });
    for (const placeholder of [-1, 255]) {
      const got = selectSplit([...train, ...new Array<number>(30).fill(placeholder)], { seed: 7, size: 12, unlabelledFrom: 50 });
      expect(got.label).toEqual(alone.label);
      expect(got.unlabel).toEqual([...alone.unlabel, ...Array.from({ length: 30 }, (_, i) => 50 + i)]);
    }
  });

  it('takes --label-size within the inputs, and refuses one that reaches into the unlabelled file', () => {
    const labels = [...train, 0, 0, 0];
    const got = selectSplit(labels, { seed: 1, size: 10, labelSize: 30, unlabelledFrom: 50 });
    expect(Math.max(...got.label)).toBeLessThan(30);
    expect(() => selectSplit(labels, { seed: 1, size: 10, labelSize: 51, unlabelledFrom: 50 })).toThrow(/--label-size 51.*50 records before the unlabelled file/);
    // without an unlabelled file a label size past the end means "every record", as in the reference
    expect(selectSplit(train, { seed: 1, size: 10, labelSize: 500 }).label).toEqual(selectSplit(train, { seed: 1, size: 10 }).label);
  });
});

describe('selectSplit validation', () => {
  const labels = selection.labels['balanced-300'];
  const err = (f: () => unknown): UserError => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(UserError);
      return e as UserError;
    }
    throw new Error('expected a UserError');
  };

  it('refuses a size larger than the records available, naming both', () => {
    expect(err(() => selectSplit(labels, { seed: 1, size: 301 })).message).toMatch(/301.*300 records/);
    expect(err(() => selectSplit(labels, { seed: 1, size: 60, labelSize: 50 })).message).toMatch(/60.*50 records/);
  });

  it('refuses a size of zero, negative or fractional', () => {
    for (const size of [0, -5, 2.5]) expect(err(() => selectSplit(labels, { seed: 1, size })).message).toMatch(/--size/);
  });

  it('refuses seeds numpy would refuse', () => {
    for (const seed of [-1, 2 ** 32, 0.5]) expect(err(() => selectSplit(labels, { seed, size: 10 })).message).toMatch(/--seed/);
  });

  it('refuses labels that are not exactly 0..nclass-1', () => {
    expect(err(() => selectSplit([0, 1, 3, 3], { seed: 0, size: 1 })).message).toMatch(/exactly 0\.\.2.*0, 1, 3/);
    expect(err(() => selectSplit([1, 2, 2], { seed: 0, size: 1 })).message).toMatch(/exactly 0\.\.1/);
    expect(err(() => selectSplit([0, -1], { seed: 0, size: 1 })).message).toMatch(/label -1/);
  });

  it('refuses unlabelled-tail labels outside the classes of the labelled head', () => {
    expect(err(() => selectSplit([0, 1, 0, 1, 2], { seed: 0, size: 2, labelSize: 4 })).message).toMatch(/record 4 has label 2/);
  });

  it('refuses fold indices that are not record positions', () => {
    expect(err(() => selectSplit(labels, { seed: 0, size: 10, foldIndices: [1, 300] })).message).toMatch(/fold index 300/);
  });
});
