import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { augCopy } from '../src/data/aug-copy';
import { createSplit } from '../src/data/create-split';
import { encodeImageExample } from '../src/data/example';
import { encodePngSync } from '../src/data/png';
import { writeRecords } from '../src/data/tfrecord';

/**
 * aug-copy on worker threads: workers run compiled JavaScript, so this goes through dist/ (built by
 * `npm test`), and the files must be byte for byte those of the in-thread run here.
 */
const DIST = path.join(__dirname, '..', 'dist', 'src', 'data', 'aug-copy.js');

async function toySplit(root: string): Promise<void> {
  const rec = (i: number) => {
    const px = Uint8Array.from({ length: 16 * 16 * 3 }, (_, k) => (i * 29 + k * 7 + ((k * k) >> 3)) & 0xff);
    return encodeImageExample(encodePngSync(px, 16, 16, 3), i % 5);
  };
  writeRecords(path.join(root, 'toy-train.tfrecord'), Array.from({ length: 60 }, (_, i) => rec(i)));
  writeRecords(path.join(root, 'toy-test.tfrecord'), Array.from({ length: 5 }, (_, i) => rec(1000 + i)));
  await createSplit({ root, dataset: 'toy', seed: 2, size: 10 });
}

function runDist(root: string, workers: number): { workers: number } {
  const script = `require(${JSON.stringify(DIST)}).augCopy({ root: ${JSON.stringify(root)}, dataset: 'toy.2@10', copies: 7, augment: 'randaugment', seed: 3, workers: ${workers}, chunk: 16 })
    .then((r) => process.stdout.write(JSON.stringify(r)), (e) => { process.stderr.write(String(e && e.message)); process.exit(1); });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`dist aug-copy failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe('aug-copy with worker threads', () => {
  let root: string;
  beforeAll(async () => {
    if (!fs.existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npx tsc -p .\` (npm test does)`);
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-aug-workers-'));
    for (const d of ['inthread', 'w2', 'w3']) {
      fs.mkdirSync(path.join(root, d));
      await toySplit(path.join(root, d));
    }
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('writes the same bytes as in-thread, whatever the number of workers', async () => {
    const local = await augCopy({ root: path.join(root, 'inthread'), dataset: 'toy.2@10', copies: 7, augment: 'randaugment', seed: 3, workers: 4 });
    // here (TypeScript under jest) there is no compiled worker: it falls back to in-thread
    expect(local.workers).toBe(0);
    expect(runDist(path.join(root, 'w2'), 2).workers).toBe(2);
    expect(runDist(path.join(root, 'w3'), 3).workers).toBe(3);
    for (const f of ['SSL/toy_aug7.2@10-unlabel.tfrecord', 'SSL/toy_aug7.2@10-label.tfrecord', 'SSL/toy_aug7.2@10-map.json', 'toy_aug7-test.tfrecord']) {
      const want = fs.readFileSync(path.join(root, 'inthread', f));
      for (const d of ['w2', 'w3']) expect(fs.readFileSync(path.join(root, d, f)).equals(want)).toBe(true);
    }
  });
});
