import * as fs from 'fs';
import * as path from 'path';
import { tempPathFor, writeFileAtomic } from '../util/atomic-write';
import { encodeImageExample } from './example';
import { encodePngSync } from './png';
import { RecordWriter } from './tfrecord';

/**
 * The files one dataset build writes, all or none: every subset goes to its own RecordWriter
 * (a temporary file), and only when the whole build has succeeded are they renamed into place,
 * together with any side files (a class mapping, STL-10's folds). A failure part-way removes every
 * temporary file, so a corrupt `extra_32x32.mat` does not leave a fresh `svhn-train.tfrecord`
 * beside a stale `svhn-test.tfrecord`.
 */

export interface WrittenFile {
  path: string;
  /** Records, for TFRecord files written now. */
  records?: number;
  /** The file this one is a copy of. */
  copyOf?: string;
}

export class DatasetOutput {
  private readonly writers = new Map<string, RecordWriter>();
  private readonly sideFiles: Array<{ target: string; data: string | Uint8Array }> = [];
  private readonly links: Array<{ target: string; from: string }> = [];
  private finished = false;

  constructor(readonly root: string, readonly name: string) {}

  /** `<root>/<stem>.tfrecord` (a stem such as `svhn-train`), opened on first use. */
  writer(stem: string): RecordWriter {
    let w = this.writers.get(stem);
    if (!w) {
      fs.mkdirSync(this.root, { recursive: true });
      w = new RecordWriter(path.join(this.root, `${stem}.tfrecord`));
      this.writers.set(stem, w);
    }
    return w;
  }

  /** PNG-encodes one H×W×C uint8 image and appends it, with its label, to `<stem>.tfrecord`. */
  writeImage(stem: string, pixels: Uint8Array, height: number, width: number, channels: number, label: number): void {
    this.writer(stem).write(encodeImageExample(encodePngSync(pixels, height, width, channels), label));
  }

  /** A file written at commit, e.g. `<root>/stl10_fold_indices.txt`. */
  addFile(target: string, data: string | Uint8Array): void {
    this.sideFiles.push({ target, data });
  }

  /** At commit, `target` becomes a copy of the finished file `from` (a hard link where possible). */
  addCopy(target: string, from: string): void {
    this.links.push({ target, from });
  }

  /** Renames everything into place; returns what was written, in the order it was added. */
  commit(): WrittenFile[] {
    if (this.finished) throw new Error(`output of ${this.name} already finished`);
    this.finished = true;
    const out: WrittenFile[] = [];
    try {
      // close (fsync) everything before the first rename, so a failing disk leaves nothing new
      const closing = [...this.writers.values()];
      for (const w of closing) w.close();
      for (const w of closing) out.push({ path: w.target, records: w.count });
    } catch (e) {
      this.abortWriters();
      throw e;
    }
    for (const f of this.sideFiles) {
      writeFileAtomic(f.target, f.data);
      out.push({ path: f.target });
    }
    for (const l of this.links) {
      copyAtomic(l.from, l.target);
      out.push({ path: l.target, records: out.find((o) => o.path === l.from)?.records, copyOf: l.from });
    }
    return out;
  }

  abort(): void {
    if (this.finished) return;
    this.finished = true;
    this.abortWriters();
  }

  private abortWriters(): void {
    for (const w of this.writers.values()) w.abort();
  }
}

/** Runs `build` with a fresh DatasetOutput: committed when it returns, aborted when it throws. */
export async function withDatasetOutput(root: string, name: string, build: (out: DatasetOutput) => Promise<void>): Promise<WrittenFile[]> {
  const out = new DatasetOutput(root, name);
  try {
    await build(out);
  } catch (e) {
    out.abort();
    throw e;
  }
  return out.commit();
}

/** A hard link when the file system allows one (the files are never modified in place), else a copy; atomic either way. */
export function copyAtomic(from: string, target: string): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  try {
    fs.linkSync(from, tmp);
  } catch {
    fs.copyFileSync(from, tmp);
  }
  try {
    fs.renameSync(tmp, target);
  } finally {
    // rename does nothing when target is already a link to the same file, leaving tmp behind
    fs.rmSync(tmp, { force: true });
  }
}

/** Gives the event loop a turn every `every` calls: progress bars redraw and Ctrl-C is seen during long builds. */
export function pacer(every = 256): () => Promise<void> {
  let n = 0;
  return () => (++n % every === 0 ? new Promise<void>((r) => setImmediate(r)) : Promise.resolve());
}
