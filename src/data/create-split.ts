import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';
import { formatSplitName, parseSplitName } from './dataset-name';
import { decodeLabel } from './example';
import { splitPrefix } from './paths';
import { selectSplit, validateSplitOptions } from './split';
import { FOOTER_BYTES, HEADER_BYTES, readRecords, RecordWriter } from './tfrecord';

/**
 * `create-split`: cut `<root>/SSL/<dataset>.<seed>@<size>-{label,unlabel}.tfrecord` and `-map.json`
 * out of base dataset files, as the reference create_split does (selection in ./split.ts).
 *
 * Two passes over the inputs: the first reads every label and remembers where each record lies;
 * the second copies records by offset, so memory holds positions, never images, whatever the
 * input size. Every output is written under a temporary name and renamed into place, the map last.
 */

export interface CreateSplitOptions {
  root: string;
  dataset: string;
  seed: number;
  size: number;
  /** Input files, concatenated; positions count across them. Default: see defaultInputs. */
  inputs?: string[];
  force?: boolean;
  /** RealMix --custom: only the first labelSize records may be labelled. */
  labelSize?: number;
  classBalance?: boolean;
  /**
   * A file of unlabelled images whose records join the unlabelled side only, after the inputs (as
   * RealMix's custom_extra appends them to the train file). Default: `<root>/<dataset>-unlabel.tfrecord`
   * (what create-datasets writes for a custom dataset) when it exists and `inputs` are not given;
   * false: none.
   */
  unlabelFile?: string | false;
  onProgress?: (p: SplitProgress) => void;
}

/** `scan` counts input bytes read for labels; `write` counts records copied. */
export interface SplitProgress {
  phase: 'scan' | 'write';
  done: number;
  total: number;
}

export interface CreateSplitResult {
  labelPath: string;
  unlabelPath: string;
  mapPath: string;
  labelCount: number;
  unlabelCount: number;
  nclass: number;
  /** Labelled records per class. */
  labelCounts: number[];
  /** The unlabelled file that was joined, and how many records it gave. */
  unlabelFile?: string;
  unlabelFileRecords: number;
}

/**
 * Base files each dataset's published splits were cut from (the originals' README recipes);
 * any other dataset uses its own `-train` file.
 */
const DEFAULT_INPUTS: Record<string, string[]> = {
  svhn: ['svhn-train', 'svhn-extra'],
  svhn_noextra: ['svhn-train'],
  stl10: ['stl10-train', 'stl10-unlabeled'],
};

export function defaultInputs(root: string, dataset: string): string[] {
  const stems = DEFAULT_INPUTS[dataset] ?? [`${dataset}-train`];
  return stems.map((s) => path.join(root, `${s}.tfrecord`));
}

export const FOLD_INDICES_FILE = 'stl10_fold_indices.txt';

/** `<root>/<dataset>-unlabel.tfrecord`: the unlabelled images of a custom dataset. */
export function defaultUnlabelFile(root: string, dataset: string): string {
  return path.join(root, `${dataset}-unlabel.tfrecord`);
}

/** The create-datasets name that produces a base file such as `svhn-extra.tfrecord`. */
function producerName(file: string, fallback: string): string {
  const m = /^(.+)-(train|test|extra|unlabeled|unlabel)\.tfrecord$/.exec(path.basename(file));
  return m ? m[1] : fallback;
}

interface Scan {
  labels: number[];
  /** Which input, and the byte offset of its framed record. */
  fileOf: number[];
  offsets: number[];
  lengths: number[];
  /** Records per input. */
  counts: number[];
  stats: fs.Stats[];
}

/**
 * Hands the event loop a turn every MiB of records: progress bars redraw, and concurrent splits in
 * one process interleave instead of running one after the other.
 */
class Pacer {
  private bytes = 0;
  private static readonly EVERY = 1 << 20;

  /** True when the caller should report progress and `await turn()`. */
  add(bytes: number): boolean {
    this.bytes += bytes;
    if (this.bytes < Pacer.EVERY) return false;
    this.bytes = 0;
    return true;
  }

  turn(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }
}

async function scanLabels(inputs: string[], dataset: string, onProgress?: (p: SplitProgress) => void): Promise<Scan> {
  const stats = inputs.map((f) => fs.statSync(f));
  const totalBytes = stats.reduce((a, s) => a + s.size, 0);
  const scan: Scan = { labels: [], fileOf: [], offsets: [], lengths: [], counts: [], stats };
  let doneBytes = 0;
  const pacer = new Pacer();
  for (let fi = 0; fi < inputs.length; fi++) {
    const file = inputs[fi];
    let offset = 0;
    let index = 0;
    for (const record of readRecords(file)) {
      let label: number;
      try {
        label = decodeLabel(record);
      } catch (e) {
        throw new UserError(
          `${file}: record ${index}: ${(e as Error).message}; recreate it with: ssl create-datasets ${producerName(file, dataset)}`,
        );
      }
      scan.labels.push(label);
      scan.fileOf.push(fi);
      scan.offsets.push(offset);
      scan.lengths.push(record.length);
      // readRecords yields every record in order (corrupt ones throw), so offsets follow from lengths.
      offset += HEADER_BYTES + record.length + FOOTER_BYTES;
      index++;
      if (pacer.add(record.length)) {
        onProgress?.({ phase: 'scan', done: doneBytes + offset, total: totalBytes });
        await pacer.turn();
      }
    }
    doneBytes += offset;
    scan.counts.push(index);
  }
  onProgress?.({ phase: 'scan', done: totalBytes, total: totalBytes });
  return scan;
}

/**
 * Reads records by offset. The writes walk forward through the inputs with some records held
 * back (the class interleave), so a forward window serves the stream and a record behind the
 * window is read on its own rather than dragging the window back.
 */
class RecordSource {
  private readonly fds: number[];
  private window: Buffer = Buffer.alloc(0);
  private windowFile = -1;
  private windowStart = 0;
  private static readonly WINDOW = 1 << 20;

  constructor(private readonly inputs: string[]) {
    this.fds = inputs.map((f) => fs.openSync(f, 'r'));
  }

  read(file: number, offset: number, length: number): Uint8Array {
    const start = offset + HEADER_BYTES;
    const end = start + length;
    const inWindow = file === this.windowFile && start >= this.windowStart && end <= this.windowStart + this.window.length;
    if (inWindow) return this.window.subarray(start - this.windowStart, end - this.windowStart);
    const behind = file < this.windowFile || (file === this.windowFile && start < this.windowStart);
    if (behind || length >= RecordSource.WINDOW) return this.readExact(file, start, length);
    const size = fs.fstatSync(this.fds[file]).size;
    this.window = this.readExact(file, start, Math.max(length, Math.min(RecordSource.WINDOW, size - start)));
    this.windowFile = file;
    this.windowStart = start;
    return this.window.subarray(0, length);
  }

  private readExact(file: number, start: number, length: number): Buffer {
    const buf = Buffer.allocUnsafe(length);
    let got = 0;
    while (got < length) {
      const n = fs.readSync(this.fds[file], buf, got, length - got, start + got);
      if (n === 0) throw new UserError(`${this.inputs[file]} got shorter while the split was being written; rerun`);
      got += n;
    }
    return buf;
  }

  close(): void {
    for (const fd of this.fds) fs.closeSync(fd);
  }
}

function readFoldIndices(root: string, seed: number): number[] {
  const file = path.join(root, FOLD_INDICES_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`missing ${file} (STL-10 at size 1000 uses its published folds); create it with: ssl create-datasets stl10`);
  }
  const line = text.split('\n')[seed]?.trim();
  if (!line) {
    throw new UserError(`${file} has no fold on line ${seed} (0-based); the STL-10 folds are seeds 0..9`);
  }
  const words = line.split(/\s+/);
  if (!words.every((w) => /^\d+$/.test(w))) throw new UserError(`${file} line ${seed} is not a list of record positions`);
  return words.map(Number);
}

function checkInputs(inputs: string[], dataset: string): void {
  for (const f of inputs) {
    if (!fs.existsSync(f)) {
      throw new UserError(`missing input ${f}; create it with: ssl create-datasets ${producerName(f, dataset)}`);
    }
    if (!fs.statSync(f).isFile()) throw new UserError(`input ${f} is not a file`);
  }
}

function unchanged(inputs: string[], before: fs.Stats[]): void {
  inputs.forEach((f, i) => {
    const now = fs.statSync(f);
    if (now.size !== before[i].size || now.mtimeMs !== before[i].mtimeMs) {
      throw new UserError(`${f} changed while the split was being made; rerun create-split`);
    }
  });
}

/** Python's json.dumps(indent=2, sort_keys=True) of {label, unlabel}: same text, no final newline. */
export function formatSplitMap(label: number[], unlabel: number[]): string {
  return JSON.stringify({ label, unlabel }, null, 2);
}

export async function createSplit(opts: CreateSplitOptions): Promise<CreateSplitResult> {
  validateSplitOptions(opts);
  // The split must be nameable by training later, so its name has to parse back.
  parseSplitName(formatSplitName({ name: opts.dataset, seed: opts.seed, size: opts.size }));
  const explicitInputs = Boolean(opts.inputs && opts.inputs.length > 0);
  const labelledInputs = (explicitInputs ? opts.inputs! : defaultInputs(opts.root, opts.dataset)).map((f) => path.resolve(f));
  let unlabelFile: string | undefined;
  if (typeof opts.unlabelFile === 'string') unlabelFile = path.resolve(opts.unlabelFile);
  else if (opts.unlabelFile === undefined && !explicitInputs && fs.existsSync(defaultUnlabelFile(opts.root, opts.dataset))) {
    unlabelFile = path.resolve(defaultUnlabelFile(opts.root, opts.dataset));
  }
  if (unlabelFile && labelledInputs.includes(unlabelFile)) {
    throw new UserError(`${unlabelFile} is both an input and the unlabelled file; list it only once`);
  }
  const inputs = unlabelFile ? [...labelledInputs, unlabelFile] : labelledInputs;
  checkInputs(inputs, opts.dataset);

  const prefix = splitPrefix(opts.root, opts.dataset, opts.seed, opts.size);
  const labelPath = `${prefix}-label.tfrecord`;
  const unlabelPath = `${prefix}-unlabel.tfrecord`;
  const mapPath = `${prefix}-map.json`;
  const existing = [labelPath, unlabelPath, mapPath].filter((f) => fs.existsSync(f));
  if (existing.length > 0 && !opts.force) {
    throw new UserError(`split ${prefix} already exists (${existing.map((f) => path.basename(f)).join(', ')}); pass --force to overwrite it`);
  }

  const scan = await scanLabels(inputs, opts.dataset, opts.onProgress);
  const unlabelRecords = unlabelFile ? scan.counts[inputs.length - 1] : 0;
  const unlabelledFrom = unlabelFile ? scan.labels.length - unlabelRecords : undefined;
  // The reference tests the whole first input path; the file name alone keeps a directory such as
  // ~/stl10-work/ from turning every dataset into STL-10.
  const stl10 = path.basename(inputs[0]).includes('stl10');
  const sel = selectSplit(scan.labels, {
    seed: opts.seed,
    size: opts.size,
    allWeightsOne: stl10,
    foldIndices: stl10 && opts.size === 1000 ? readFoldIndices(opts.root, opts.seed) : undefined,
    labelSize: opts.labelSize,
    classBalance: opts.classBalance,
    unlabelledFrom,
  });

  const total = sel.label.length + sel.unlabel.length;
  let written = 0;
  const pacer = new Pacer();
  const writers: RecordWriter[] = [];
  try {
    for (const [target, positions] of [[labelPath, sel.label], [unlabelPath, sel.unlabel]] as const) {
      const w = new RecordWriter(target);
      writers.push(w);
      // A fresh source per file: each output walks the inputs from the start again.
      const source = new RecordSource(inputs);
      try {
        for (const pos of positions) {
          w.write(source.read(scan.fileOf[pos], scan.offsets[pos], scan.lengths[pos]));
          written++;
          if (pacer.add(scan.lengths[pos])) {
            opts.onProgress?.({ phase: 'write', done: written, total });
            await pacer.turn();
          }
        }
      } finally {
        source.close();
      }
    }
    unchanged(inputs, scan.stats);
  } catch (e) {
    for (const w of writers) w.abort();
    throw e;
  }
  for (const w of writers) w.close();
  writeFileAtomic(mapPath, formatSplitMap(sel.label, sel.unlabel));
  opts.onProgress?.({ phase: 'write', done: total, total });

  return {
    labelPath,
    unlabelPath,
    mapPath,
    labelCount: sel.label.length,
    unlabelCount: sel.unlabel.length,
    nclass: sel.nclass,
    labelCounts: sel.labelCounts,
    unlabelFile,
    unlabelFileRecords: unlabelRecords,
  };
}
