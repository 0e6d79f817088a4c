/**
 * aug-copy throughput on 32×32 RGB images, PNG decode and encode included (plus reading, Example
 * parsing, augmenting and writing the TFRecord), for 1 thread and for worker threads.
 *
 *   npx tsc -p . && node dist/scripts/bench-aug-copy.js [options]
 *
 *   --images <n>      unlabelled images in the toy split (default 2000)
 *   --copies <n>      augmented copies of each (default 5)
 *   --augment <name>  augmentation (default cutout; try cifar10, randaugment)
 *   --workers <list>  thread counts to time (default 1,<cores>)
 *
 * Images are smooth gradients with noise, which compress to about CIFAR-10's PNG size (2-3 kB).
 * Prints records/s per thread count, records per CPU-second this process used (steadier than
 * wall-clock rates on a shared machine), and the CPU share other processes took meanwhile (a busy
 * machine makes the rates read low).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cpuSample, cpuShares } from './cpu-share';
import { augCopy } from '../src/data/aug-copy';
import { defaultWorkerCount } from '../src/data/augment-workers';
import { createSplit } from '../src/data/create-split';
import { encodeImageExample } from '../src/data/example';
import { encodePngSync } from '../src/data/png';
import { RandomState } from '../src/random';
import { writeRecords } from '../src/data/tfrecord';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

function image(i: number, rng: RandomState): Uint8Array {
  const px = new Uint8Array(32 * 32 * 3);
  const phase = i * 0.37;
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < 32; x++) {
      for (let c = 0; c < 3; c++) {
        const v = 128 + 90 * Math.sin((x + phase * (c + 1)) / 5) * Math.cos((y - phase) / 7) + rng.uniform(-20, 20);
        px[(y * 32 + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return px;
}

async function main(): Promise<void> {
  const images = Number(arg('images', '2000'));
  const copies = Number(arg('copies', '5'));
  const augment = arg('augment', 'cutout');
  const workers = arg('workers', `1,${defaultWorkerCount()}`).split(',').map(Number);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-bench-aug-'));
  try {
    const rng = new RandomState(1);
    const recs = Array.from({ length: images + 10 }, (_, i) => encodeImageExample(encodePngSync(image(i, rng), 32, 32, 3), i % 10));
    writeRecords(path.join(root, 'bench-train.tfrecord'), recs);
    writeRecords(path.join(root, 'bench-test.tfrecord'), recs.slice(0, 10));
    await createSplit({ root, dataset: 'bench', seed: 1, size: 10 });
    const avg = recs.reduce((a, r) => a + r.length, 0) / recs.length;
    console.log(`aug-copy: ${images} images of 32x32x3 (${avg.toFixed(0)} B a record) x ${copies} copies, augment ${augment}, ${os.cpus().length} cores`);
    for (const w of workers) {
      const a = cpuSample();
      const t0 = process.hrtime.bigint();
      const r = await augCopy({ root, dataset: 'bench.1@10', copies, augment, workers: w, force: true });
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const b = cpuSample();
      const { others } = cpuShares(a, b);
      console.log(
        `  ${w === 1 ? '1 thread ' : `${r.workers} workers`}: ${(r.records / secs).toFixed(0).padStart(6)} records/s ` +
          `(${r.records} in ${secs.toFixed(2)} s; ${((r.records * 1000) / (b.own - a.own)).toFixed(0)} per CPU-second of this process; ` +
          `other processes took ~${(others * 100).toFixed(0)}% of the CPU)`,
      );
    }
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
