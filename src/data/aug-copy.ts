import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { tempPathFor } from '../util/atomic-write';
import { getAugmentation } from './augment';
import type { Augmentation } from './augment-base';
import { AugCopyReply, AugCopyTask, runAugCopyTask } from './aug-copy-codec';
import { recordSeed, shuffledOrder } from './aug-copy-order';
import { defaultWorkerCount, WorkerPool, workerScript } from './augment-workers';
import { augCopyName, formatSplitName, parseSplitName } from './dataset-name';
import { baseDatasetFile, splitPrefix } from './paths';
import { FOOTER_BYTES, HEADER_BYTES, readRecords, RecordWriter } from './tfrecord';

/**
 * `aug-copy` (RealMix's make_aug_copy): `copies` augmented versions of every unlabelled image of a
 * split, shuffled, as `<name>_aug<copies>.<seed>@<size>-unlabel.tfrecord`; beside it the same
 * labelled file, a map, and the test file as `<name>_aug<copies>-test.tfrecord`, so that
 * `ssl train --dataset <name>_aug<copies>.<seed>@<size>-<valid>` finds everything. (The original
 * wrote only the unlabelled and test files; its trainer needed the labelled one copied by hand.)
 *
 * Streaming: the source file is scanned once for record offsets; the output order is a
 * permutation of (copy, image) pairs (4 bytes each: 2.5 M pairs are 10 MB); records are read by
 * offset, augmented and written in runs as their turn comes. Memory does not grow with the number
 * of copies. Runs go to worker threads (decode, augment, encode), and come back in order; each
 * record's augmentation is seeded by (seed, copy, image) alone, so the file is byte-identical for
 * any number of workers and on every re-run. Every output is written under a temporary name and
 * renamed into place only when all of them are complete.
 */

export interface AugCopyOptions {
  root: string;
  /** Source split, `<name>.<seed>@<size>`. */
  dataset: string;
  copies: number;
  augment: string;
  /** Shuffle and augmentation seed (the original's shuffle used 1). */
  seed?: number;
  /** Also write every un-augmented record (byte for byte), as one more copy. */
  keepOriginal?: boolean;
  /** Worker threads; 1 (or workers unavailable) does the work in this thread. */
  workers?: number;
  force?: boolean;
  /** Records per worker task. */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface AugCopyResult {
  name: string;
  unlabelPath: string;
  labelPath: string;
  mapPath: string | null;
  testPath: string;
  sourceRecords: number;
  records: number;
  /** Worker threads used; 0 when the work ran in this thread. */
  workers: number;
}

interface Source {
  offsets: Float64Array;
  lengths: Int32Array;
}

function scanOffsets(file: string): Source {
  const offsets: number[] = [];
  const lengths: number[] = [];
  let offset = 0;
  for (const rec of readRecords(file)) {
    offsets.push(offset + HEADER_BYTES);
    lengths.push(rec.length);
    offset += HEADER_BYTES + rec.length + FOOTER_BYTES;
  }
  return { offsets: Float64Array.from(offsets), lengths: Int32Array.from(lengths) };
}

/** Python's json.dumps(indent=2, sort_keys=True) of {label, unlabel}, written in pieces. */
function writeMap(fd: number, label: ArrayLike<number>, count: number, unlabelAt: (k: number) => number): void {
  let buf = '';
  const put = (s: string): void => {
    buf += s;
    if (buf.length >= 1 << 16) {
      fs.writeSync(fd, buf);
      buf = '';
    }
  };
  const list = (key: string, n: number, at: (k: number) => number, last: boolean): void => {
    if (n === 0) put(`  "${key}": []`);
    else {
      put(`  "${key}": [\n`);
      for (let k = 0; k < n; k++) put(`    ${at(k)}${k + 1 < n ? ',' : ''}\n`);
      put('  ]');
    }
    put(last ? '\n' : ',\n');
  };
  put('{\n');
  list('label', label.length, (k) => label[k], false);
  list('unlabel', count, unlabelAt, true);
  put('}');
  fs.writeSync(fd, buf);
}

function readSourceMap(file: string, unlabelCount: number): { label: number[]; unlabel: number[] } | null {
  if (!fs.existsSync(file)) return null;
  let m: { label?: unknown; unlabel?: unknown };
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    throw new UserError(`${file} is not valid JSON; recreate the split with ssl create-split`);
  }
  const ints = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x));
  if (!ints(m.label) || !ints(m.unlabel) || m.unlabel.length !== unlabelCount) {
    throw new UserError(`${file} does not describe the ${unlabelCount} unlabelled records beside it; recreate the split with ssl create-split`);
  }
  return { label: m.label, unlabel: m.unlabel };
}

function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r+');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export function validateAugCopyOptions(o: Pick<AugCopyOptions, 'copies' | 'augment' | 'dataset' | 'seed'>): Augmentation {
  parseSplitName(o.dataset);
  if (!Number.isInteger(o.copies) || o.copies < 1) throw new UserError(`--copies must be a whole number of at least 1, got ${o.copies}`);
  const seed = o.seed ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UserError(`--seed must be a non-negative integer, got ${seed}`);
  return getAugmentation(o.augment);
}

export async function augCopy(opts: AugCopyOptions): Promise<AugCopyResult> {
  validateAugCopyOptions(opts);
  const split = parseSplitName(opts.dataset);
  const seed = opts.seed ?? 1;
  const keep = opts.keepOriginal ? 1 : 0;
  const outName = augCopyName(split.name, opts.copies);
  const srcPrefix = splitPrefix(opts.root, split.name, split.seed, split.size);
  const outPrefix = splitPrefix(opts.root, outName, split.seed, split.size);
  const src = { unlabel: `${srcPrefix}-unlabel.tfrecord`, label: `${srcPrefix}-label.tfrecord`, map: `${srcPrefix}-map.json`, test: baseDatasetFile(opts.root, split.name, 'test') };
  const out = { unlabel: `${outPrefix}-unlabel.tfrecord`, label: `${outPrefix}-label.tfrecord`, map: `${outPrefix}-map.json`, test: baseDatasetFile(opts.root, outName, 'test') };
  const makeSplit = `ssl create-split --dataset ${split.name} --seed ${split.seed} --size ${split.size}`;
  for (const f of [src.unlabel, src.label]) {
    if (!fs.existsSync(f)) throw new UserError(`missing source split file ${f}; create it with: ${makeSplit}`);
  }
  if (!fs.existsSync(src.test)) throw new UserError(`missing test file ${src.test} (training on the copies needs it); create it with: ssl create-datasets ${split.base}`);
  const existing = [out.unlabel, out.label, out.map].filter((f) => fs.existsSync(f));
  if (existing.length > 0 && !opts.force) {
    throw new UserError(`${formatSplitName({ name: outName, seed: split.seed, size: split.size })} already exists (${existing.map((f) => path.basename(f)).join(', ')}); pass --force to overwrite it`);
  }

  const before = [src.unlabel, src.label, src.test].map((f) => fs.statSync(f));
  const source = scanOffsets(src.unlabel);
  const n = source.lengths.length;
  if (n === 0) throw new UserError(`${src.unlabel} has no records to augment`);
  const srcMap = readSourceMap(src.map, n);
  const total = (opts.copies + keep) * n;
  if (total > 2 ** 31 - 1) throw new UserError(`${opts.copies} copies of ${n} records is more than one file can index; use fewer copies`);
  const order = shuffledOrder(seed, total);
  // order[k] = block·n + image; block 0 is the originals when they are kept
  const seedOf = (block: number, image: number): number => (block < keep ? -1 : recordSeed(seed, block - keep, image));

  const script = workerScript(__filename, 'aug-copy-worker');
  const wanted = opts.workers ?? defaultWorkerCount();
  const pool = wanted > 1 && script ? new WorkerPool<AugCopyTask, AugCopyReply>(script, wanted) : null;
  const chunk = opts.chunk ?? 128;
  const augments = new Map<string, Augmentation>();
  const inThread = (t: AugCopyTask): Promise<AugCopyReply> =>
    runAugCopyTask(t, (name) => augments.get(name) ?? augments.set(name, getAugmentation(name)).get(name)!);

  const temps: string[] = [];
  const tempFor = (target: string): string => {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const t = tempPathFor(target);
    temps.push(t);
    return t;
  };
  let writer: RecordWriter | null = null;
  const fd = fs.openSync(src.unlabel, 'r');
  try {
    const labelTmp = tempFor(out.label);
    fs.copyFileSync(src.label, labelTmp);
    fsyncFile(labelTmp);
    const testTmp = tempFor(out.test);
    fs.copyFileSync(src.test, testTmp);
    fsyncFile(testTmp);

    writer = new RecordWriter(out.unlabel);
    const makeTask = (start: number, end: number): { task: AugCopyTask; images: number[] } => {
      let bytes = 0;
      for (let k = start; k < end; k++) bytes += source.lengths[order[k] % n];
      const buf = new Uint8Array(bytes);
      const lengths: number[] = [];
      const seeds: number[] = [];
      const images: number[] = [];
      let o = 0;
      for (let k = start; k < end; k++) {
        const image = order[k] % n;
        const len = source.lengths[image];
        let got = 0;
        while (got < len) {
          const r = fs.readSync(fd, buf, o + got, len - got, source.offsets[image] + got);
          if (r === 0) throw new UserError(`${src.unlabel} got shorter while it was being read; rerun`);
          got += r;
        }
        o += len;
        lengths.push(len);
        seeds.push(seedOf(Math.floor(order[k] / n), image));
        images.push(image);
      }
      return { task: { augment: opts.augment, buffer: buf.buffer, lengths, seeds }, images };
    };
    const inflight: Array<{ reply: Promise<AugCopyReply>; images: number[] }> = [];
    const maxInflight = pool ? 2 * pool.size : 1;
    let done = 0;
    const drainOne = async (): Promise<void> => {
      const head = inflight.shift()!;
      const reply = await head.reply;
      if (reply.failed) {
        throw new UserError(`${src.unlabel}: record ${head.images[reply.failed.index]} cannot be augmented (${reply.failed.message}); recreate the split`);
      }
      let o = 0;
      const all = new Uint8Array(reply.buffer);
      for (const len of reply.lengths) {
        writer!.write(all.subarray(o, o + len));
        o += len;
      }
      done += reply.lengths.length;
      opts.onProgress?.(done, total);
    };
    opts.onProgress?.(0, total);
    for (let start = 0; start < total; start += chunk) {
      if (opts.signal?.aborted) throw new UserError('aug-copy interrupted; no output was written');
      const { task, images } = makeTask(start, Math.min(total, start + chunk));
      const reply = pool ? pool.run(task, [task.buffer]) : inThread(task);
      // a rejection is handled when its turn comes; mark it handled now so Node does not warn meanwhile
      reply.catch(() => undefined);
      inflight.push({ reply, images });
      while (inflight.length >= maxInflight) await drainOne();
      if (!pool) await new Promise((r) => setImmediate(r));
    }
    while (inflight.length > 0) await drainOne();

    let mapTmp: string | null = null;
    if (srcMap) {
      mapTmp = tempFor(out.map);
      const mfd = fs.openSync(mapTmp, 'w');
      try {
        writeMap(mfd, srcMap.label, total, (k) => srcMap.unlabel[order[k] % n]);
        fs.fsyncSync(mfd);
      } finally {
        fs.closeSync(mfd);
      }
    }
    [src.unlabel, src.label, src.test].forEach((f, i) => {
      const now = fs.statSync(f);
      if (now.size !== before[i].size || now.mtimeMs !== before[i].mtimeMs) throw new UserError(`${f} changed while aug-copy read it; rerun`);
    });

    writer.close();
    fs.renameSync(labelTmp, out.label);
    if (mapTmp) fs.renameSync(mapTmp, out.map);
    else fs.rmSync(out.map, { force: true }); // a stale map from an earlier run would describe other records
    fs.renameSync(testTmp, out.test);
    return {
      name: formatSplitName({ name: outName, seed: split.seed, size: split.size }),
      unlabelPath: out.unlabel,
      labelPath: out.label,
      mapPath: mapTmp ? out.map : null,
      testPath: out.test,
      sourceRecords: n,
      records: total,
      workers: pool ? pool.size : 0,
    };
  } catch (e) {
    writer?.abort();
    throw e;
  } finally {
    fs.closeSync(fd);
    for (const t of temps) fs.rmSync(t, { force: true });
    await pool?.close();
  }
}
