import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { register, runCheckSplit } from '../src/commands/check-split';
import { checkSplit, formatCheckSplit } from '../src/data/check-split';
import { createSplit } from '../src/data/create-split';
import { encodeImageExample } from '../src/data/example';
import { encodePng, encodePngSync } from '../src/data/png';
import { readAllRecords, writeRecords } from '../src/data/tfrecord';
import { UserError } from '../src/errors';

/** Distinct 4x4 RGB pixels per id. */
const pixels = (id: number): Uint8Array => new Uint8Array(48).map((_, j) => (id * 29 + j * 5) & 0xff);

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-check-split-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** toy: 40 train images (ids 0..39, 4 classes), test of 8 fresh images; a split toy.1@8. */
async function toy(testIds: number[] = [100, 101, 102, 103, 104, 105, 106, 107], encode: (id: number) => Uint8Array | Promise<Uint8Array> = (id) => encodePngSync(pixels(id), 4, 4, 3)): Promise<void> {
  writeRecords(path.join(root, 'toy-train.tfrecord'), Array.from({ length: 40 }, (_, i) => encodeImageExample(encodePngSync(pixels(i), 4, 4, 3), i % 4)));
  writeRecords(path.join(root, 'toy-test.tfrecord'), await Promise.all(testIds.map(async (id, i) => encodeImageExample(await encode(id), i % 4))));
  await createSplit({ root, dataset: 'toy', seed: 1, size: 8 });
}

describe('checkSplit', () => {
  it('finds nothing in a clean split, and reports every pair of sets', async () => {
    await toy();
    const r = await checkSplit({ root, dataset: 'toy.1@8-4' });
    expect(r.sets.map((s) => [s.role, s.records, s.distinct, s.duplicates])).toEqual([
      ['labelled', 8, 8, 0],
      ['validation', 4, 4, 0],
      ['unlabelled', 28, 28, 0],
      ['test', 8, 8, 0],
    ]);
    expect(r.overlaps).toHaveLength(6);
    expect(r.totalOverlap).toBe(0);
    expect(formatCheckSplit(r)).toContain('No image is in two sets.');
  });

  it('finds a labelled image re-encoded into the test set by its pixels, not by its PNG bytes', async () => {
    // the same pixels as train images 5 and 6, written by another PNG encoder (different bytes)
    await toy([100, 5, 6, 103], (id) => encodePng(pixels(id), 4, 4, 3));
    const label = JSON.parse(fs.readFileSync(path.join(root, 'SSL', 'toy.1@8-map.json'), 'utf8')).label as number[];
    const testBytes = readAllRecords(path.join(root, 'toy-test.tfrecord'));
    const trainBytes = readAllRecords(path.join(root, 'toy-train.tfrecord'));
    expect(Buffer.from(testBytes[1]).equals(Buffer.from(trainBytes[5]))).toBe(false);

    const r = await checkSplit({ root, dataset: 'toy.1@8' });
    const pair = (a: string, b: string) => r.overlaps.find((o) => o.a === a && o.b === b)!.images;
    const inLabelled = [5, 6].filter((i) => label.includes(i)).length;
    expect(pair('labelled', 'test')).toBe(inLabelled);
    expect(pair('unlabelled', 'test')).toBe(2 - inLabelled);
    expect(r.totalOverlap).toBe(2);
    const png = await checkSplit({ root, dataset: 'toy.1@8', hash: 'png' });
    expect(png.totalOverlap).toBe(0);
  });

  it('counts repeats within a set without calling them overlaps', async () => {
    await toy([100, 100, 101, 102]);
    const r = await checkSplit({ root, dataset: 'toy.1@8' });
    expect(r.sets.find((s) => s.role === 'test')).toMatchObject({ records: 4, distinct: 3, duplicates: 1 });
    expect(r.totalOverlap).toBe(0);
  });

  it('takes only split and training names', async () => {
    await toy();
    await expect(checkSplit({ root, dataset: 'toy' })).rejects.toThrow(/takes a split/);
  });
});

describe('ssl check-split command', () => {
  it('documents its options; fails after the report when sets overlap, unless --allow-overlap', async () => {
    const p = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    register(p);
    const help = p.commands[0].helpInformation();
    expect(help).toMatch(/--hash <what>.*\(default:\s+"pixels"\)/s);
    expect(help).toMatch(/--allow-overlap.*\(default: false\)/s);
    expect(help).toMatch(/status\s+1\s+when\s+any\s+two\s+sets\s+share\s+an\s+image/);

    await toy([100, 3, 101, 102]);
    const lines: string[] = [];
    const e = await runCheckSplit({ dataset: 'toy.1@8-2', hash: 'pixels', json: false, allowOverlap: false, dataDir: root }, (l) => lines.push(l)).catch((x) => x);
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toMatch(/^toy\.1@8-2: sets share images \((labelled|validation|unlabelled)\/test 1\); pass --allow-overlap/);
    expect(lines.join('\n')).toMatch(/share 1 image \(e\.g\. records \d+ of the (labelled|validation|unlabelled) file\)/);

    const json: string[] = [];
    const r = await runCheckSplit({ dataset: 'toy.1@8-2', hash: 'pixels', json: true, allowOverlap: true, dataDir: root }, (l) => json.push(l));
    expect(JSON.parse(json.join('\n')).totalOverlap).toBe(1);
    expect(r.totalOverlap).toBe(1);
  });
});
