import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeImageExample } from '../src/data/example';
import { encodePngSync } from '../src/data/png';
import { readAllRecords, writeRecords } from '../src/data/tfrecord';
import { halfWritten, runParallelCase, watch, type ParallelCase } from './helpers/concurrent';

/**
 * The README's parallel loops through the real CLI (dist/bin/ssl.js, built by `npm test`):
 * N invocations at once over one data root give exactly the files N serial invocations give, and
 * a reader watching all along never sees a half-written file. aug-copy and train join as more
 * ParallelCases (see test/helpers/concurrent.ts).
 */
const CLI = path.join(__dirname, '..', 'dist', 'bin', 'ssl.js');

let work: string;
beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does)`);
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-concurrency-'));
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** A small base dataset `toy` (10 classes of 8x8 grey digits-to-be), enough to make splits from. */
function writeToyDataset(root: string, count = 3000): void {
  const recs: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const label = (i * 7) % 10;
    const px = Uint8Array.from({ length: 64 }, (_, k) => (k * 13 + i * 31 + label * 50) & 0xff);
    recs.push(encodeImageExample(encodePngSync(px, 8, 8, 1), label));
  }
  writeRecords(path.join(root, 'toy-train.tfrecord'), recs);
  writeRecords(path.join(root, 'toy-test.tfrecord'), recs.slice(0, 200));
}

/** A reader's check of a look at a finished-looking file: TFRecords read to the end, JSON parses. */
function readsWhole(file: string, bytes: Buffer): void {
  if (file.endsWith('.tfrecord')) {
    const copy = path.join(work, `look-${process.pid}.tfrecord`);
    fs.writeFileSync(copy, bytes);
    try {
      readAllRecords(copy);
    } finally {
      fs.rmSync(copy, { force: true });
    }
  } else if (file.endsWith('.json')) {
    JSON.parse(bytes.toString('utf8'));
  }
}

const SEEDS = ['1', '2', '3', '4', '5'];

const createSplit: ParallelCase = {
  prepare: (root) => writeToyDataset(root),
  jobs: (root) => SEEDS.map((seed) => ['create-split', '--seed', seed, '--size', '100', '--dataset', 'toy', '--data-dir', root]),
  outputs: ['SSL'],
  validate: readsWhole,
};

test(`create-split for ${SEEDS.length} seeds at once writes what a serial loop writes, and no reader sees a half-written file`, async () => {
  const r = await runParallelCase(CLI, path.join(work, 'create-split'), createSplit);
  // (stderr holds progress lines; an error would start with 'ssl:')
  for (const run of [...r.together, ...r.oneByOne]) expect([run.args.join(' '), run.code, /^ssl:/m.test(run.stderr)]).toEqual([run.args.join(' '), 0, false]);
  expect(r.files).toHaveLength(SEEDS.length * 3);
  expect(r.differences).toEqual([]);
  expect(r.halfWritten).toEqual([]);
  // the reader really was looking while the writers ran
  expect(r.looks).toBeGreaterThan(r.files.length);
});

const augCopy: ParallelCase = {
  prepare: (root) => {
    writeToyDataset(root, 600);
    for (const seed of SEEDS) {
      const r = spawnSync(process.execPath, [CLI, 'create-split', '--seed', seed, '--size', '50', '--dataset', 'toy', '--data-dir', root], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
    }
  },
  // every job also writes the shared toy_aug2-test.tfrecord: the same bytes, each by its own rename
  jobs: (root) => SEEDS.map((seed) => ['aug-copy', '--dataset', `toy.${seed}@50`, '--copies', '2', '--augment', 'mnist', '--data-dir', root]),
  outputs: ['SSL'],
  validate: readsWhole,
};

test(`aug-copy for ${SEEDS.length} seeds at once writes what a serial loop writes, and no reader sees a half-written file`, async () => {
  const r = await runParallelCase(CLI, path.join(work, 'aug-copy'), augCopy);
  for (const run of [...r.together, ...r.oneByOne]) expect([run.args.join(' '), run.code, /^ssl:/m.test(run.stderr)]).toEqual([run.args.join(' '), 0, false]);
  expect(r.files.filter((f) => f.includes('_aug2.'))).toHaveLength(SEEDS.length * 3);
  expect(r.differences).toEqual([]);
  expect(r.halfWritten).toEqual([]);
});

test('the same reader catches a file written in place (so the check above can fail)', async () => {
  const dir = path.join(work, 'in-place');
  fs.mkdirSync(dir);
  const target = path.join(dir, 'a.tfrecord');
  writeRecords(path.join(work, 'source.tfrecord'), Array.from({ length: 200 }, (_, k) => new Uint8Array(500).fill(k)));
  const watcher = watch([dir], readsWhole);
  // a writer that does not use a temporary file: the bytes appear a piece at a time
  const writer = spawn(process.execPath, [
    '-e',
    `const fs = require('fs'); const src = fs.readFileSync(process.argv[1]); const fd = fs.openSync(process.argv[2], 'w');
     for (let o = 0; o < src.length; o += 4096) { fs.writeSync(fd, src.subarray(o, o + 4096)); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5); }
     fs.closeSync(fd);`,
    path.join(work, 'source.tfrecord'),
    target,
  ]);
  await new Promise((resolve) => writer.on('close', resolve));
  const seen = halfWritten(await watcher.stop());
  expect(seen.length).toBeGreaterThan(0);
  expect(seen.join('\n')).toMatch(/a\.tfrecord/);
});
