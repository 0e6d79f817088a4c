import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { ensureDir, tempPathFor, withWriteErrors, writeAll } from '../util/atomic-write';
import { maskedCrc32c } from './crc32c';

/**
 * TFRecord framing, byte-compatible with TensorFlow:
 *   uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
 * all little-endian. Readers verify both CRCs.
 */

export const HEADER_BYTES = 12;
export const FOOTER_BYTES = 4;

export function frameRecord(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + data.length + FOOTER_BYTES);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out, 0, 8), 8);
  out.set(data, HEADER_BYTES);
  out.writeUInt32LE(maskedCrc32c(data), HEADER_BYTES + data.length);
  return out;
}

export interface ReadOptions {
  /**
   * Go on past damaged records instead of failing; `onCorrupt` is told of each. A record whose
   * data CRC is wrong is skipped; after a damaged length field the reader looks for the next
   * intact record (both CRCs right) and goes on from there; a truncated end of file ends the read.
   */
  skipCorrupt?: boolean;
  onCorrupt?: (info: CorruptRecord) => void;
}

export interface CorruptRecord {
  file: string;
  /**
   * Index the damaged record would have had. After a damaged length field the records in the
   * skipped range cannot be told apart, so the range counts as one record for later indices.
   */
  index: number;
  /** Byte offset of the damaged record (or range) in the file. */
  offset: number;
  reason: string;
  /** Bytes passed over: the damaged record, or the range up to the next intact record or the end. */
  bytes: number;
}

/** A record with where it lies in its file. */
export interface RecordEntry {
  data: Uint8Array;
  index: number;
  offset: number;
}

/** Largest record we accept; a bigger length field means corruption, not data. */
export const MAX_RECORD_BYTES = 1 << 30;
const CHUNK = 1 << 20;

/** The one-line error for a corrupt record; also what --skip-corrupt readers show when they count. */
export function describeCorrupt(c: CorruptRecord): string {
  return `${c.file}: record ${c.index} at byte ${c.offset} is corrupt (${c.reason})`;
}

function corruptError(c: CorruptRecord): UserError {
  return new UserError(`${describeCorrupt(c)}; recreate the file, or pass --skip-corrupt to read past it`);
}

/** The one-line error for a file that cannot be opened or read. */
export function readError(file: string, e: unknown): UserError {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const why =
    code === 'ENOENT' ? 'no such file' :
    code === 'EISDIR' ? 'it is a directory' :
    code === 'EACCES' || code === 'EPERM' ? 'permission denied' :
    code ?? (e as Error).message;
  return new UserError(`cannot read ${file}: ${why}`);
}

/** Random access to a file through one forward-moving window of at least CHUNK bytes. */
class Window {
  private buf = Buffer.alloc(0);
  private start = 0; // file offset of buf[0]

  constructor(private readonly fd: number, readonly size: number, private readonly file: string) {}

  /** The buffer and the index in it of file offset `from`, covering [from, to); null past end of file. */
  cover(from: number, to: number): { buf: Buffer; at: number } | null {
    if (to > this.size) return null;
    if (from < this.start || to > this.start + this.buf.length) {
      const len = Math.min(Math.max(to - from, CHUNK), this.size - from);
      const fresh = Buffer.allocUnsafe(len);
      let got = 0;
      while (got < len) {
        let n: number;
        try {
          n = fs.readSync(this.fd, fresh, got, len - got, from + got);
        } catch (e) {
          throw readError(this.file, e);
        }
        // the file shrank under us: what is missing is a truncation
        if (n === 0) return null;
        got += n;
      }
      this.buf = fresh;
      this.start = from;
    }
    return { buf: this.buf, at: from - this.start };
  }
}

type Header = { ok: true; len: number } | { ok: false; reason: string };

function readHeader(w: Window, pos: number): Header | null {
  const h = w.cover(pos, pos + HEADER_BYTES);
  if (!h) return null;
  const { buf, at } = h;
  if (buf.readUInt32LE(at + 8) !== maskedCrc32c(buf, at, at + 8)) return { ok: false, reason: 'length CRC mismatch' };
  const len = buf.readBigUInt64LE(at);
  // checked before anything is allocated for the record
  if (len > BigInt(MAX_RECORD_BYTES)) return { ok: false, reason: `length ${len} exceeds the ${MAX_RECORD_BYTES}-byte record limit` };
  return { ok: true, len: Number(len) };
}

/** Whether an intact record (both CRCs right, wholly inside the file) starts at `pos`. */
function intactAt(w: Window, pos: number): boolean {
  const h = readHeader(w, pos);
  if (!h || !h.ok) return false;
  const d = w.cover(pos + HEADER_BYTES, pos + HEADER_BYTES + h.len + FOOTER_BYTES);
  return d !== null && d.buf.readUInt32LE(d.at + h.len) === maskedCrc32c(d.buf, d.at, d.at + h.len);
}

/**
 * The offset of the next intact record after a damaged header at `pos`, or the file size. Two
 * CRCs must agree, so a false start inside the damage is a 1-in-2^64 event.
 */
function resync(w: Window, pos: number): number {
  for (let p = pos + 1; p + HEADER_BYTES + FOOTER_BYTES <= w.size; p++) {
    if (intactAt(w, p)) return p;
  }
  return w.size;
}

/**
 * Streams the records of a file with their index and byte offset, holding at most one record
 * plus a chunk in memory. A damaged record throws a UserError naming the file, the record index
 * and the byte offset, unless `skipCorrupt` (see ReadOptions).
 */
export function* readRecordEntries(file: string, opts: ReadOptions = {}): Generator<RecordEntry> {
  let fd: number;
  let size: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw readError(file, e);
  }
  try {
    try {
      const st = fs.fstatSync(fd);
      if (st.isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
      size = st.size;
    } catch (e) {
      throw readError(file, e);
    }
    const w = new Window(fd, size, file);
    let pos = 0;
    let index = 0;
    // A damaged record: an error, or with skipCorrupt a report and the caller moves on.
    const corrupt = (reason: string, bytes: number): void => {
      const c: CorruptRecord = { file, index, offset: pos, reason, bytes };
      if (!opts.skipCorrupt) throw corruptError(c);
      opts.onCorrupt?.(c);
    };
    while (pos < size) {
      const h = readHeader(w, pos);
      if (!h) {
        corrupt(`truncated header: ${size - pos} of ${HEADER_BYTES} bytes`, size - pos);
        return;
      }
      if (!h.ok) {
        const next = resync(w, pos);
        corrupt(next < size ? `${h.reason}; skipped ${next - pos} bytes to the next intact record at byte ${next}` : `${h.reason}; no intact record follows`, next - pos);
        pos = next;
        index++;
        continue;
      }
      const end = pos + HEADER_BYTES + h.len + FOOTER_BYTES;
      const d = w.cover(pos + HEADER_BYTES, end);
      if (!d) {
        corrupt(`truncated data: the record needs ${end - pos} bytes, the file has ${size - pos} left`, size - pos);
        return;
      }
      if (d.buf.readUInt32LE(d.at + h.len) !== maskedCrc32c(d.buf, d.at, d.at + h.len)) {
        corrupt('data CRC mismatch', end - pos);
      } else {
        // copy: the window's buffer is reused, and callers keep records
        yield { data: Uint8Array.prototype.slice.call(d.buf, d.at, d.at + h.len), index, offset: pos };
      }
      pos = end;
      index++;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The records of a file, in order; see readRecordEntries. */
export function* readRecords(file: string, opts: ReadOptions = {}): Generator<Uint8Array> {
  for (const e of readRecordEntries(file, opts)) yield e.data;
}

export function readAllRecords(file: string, opts: ReadOptions = {}): Uint8Array[] {
  return Array.from(readRecords(file, opts));
}

/**
 * Writes records to a temporary file beside the target; `close()` fsyncs and renames it into place,
 * so readers never see a half-written file. `abort()` removes the temporary file. A full disk or
 * an unwritable directory ends in a one-line UserError with the temporary file removed and an
 * existing target untouched.
 */
export class RecordWriter {
  private fd: number | null;
  private readonly tmp: string;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  count = 0;

  constructor(readonly target: string) {
    this.tmp = tempPathFor(target);
    this.fd = withWriteErrors(target, () => {
      ensureDir(path.dirname(target));
      return fs.openSync(this.tmp, 'wx');
    });
  }

  write(record: Uint8Array): void {
    if (this.fd === null) throw new Error(`RecordWriter for ${this.target} is closed`);
    const framed = frameRecord(record);
    this.pending.push(framed);
    this.pendingBytes += framed.length;
    this.count++;
    if (this.pendingBytes >= CHUNK) this.guarded(() => this.flushPending());
  }

  /** Runs a step of writing; a failure leaves nothing behind and says why in one line. */
  private guarded(fn: () => void): void {
    try {
      withWriteErrors(this.target, fn);
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  private flushPending(): void {
    if (this.fd === null || this.pending.length === 0) return;
    const all = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    writeAll(this.fd, all);
  }

  close(): void {
    if (this.fd === null) return;
    const fd = this.fd;
    this.guarded(() => {
      this.flushPending();
      fs.fsyncSync(fd);
      this.fd = null;
      fs.closeSync(fd);
      fs.renameSync(this.tmp, this.target);
    });
  }

  abort(): void {
    if (this.fd !== null) {
      const fd = this.fd;
      this.fd = null;
      try {
        fs.closeSync(fd);
      } catch {
        // removing the file below is what matters
      }
    }
    this.pending = [];
    this.pendingBytes = 0;
    try {
      fs.rmSync(this.tmp, { force: true });
    } catch {
      // nothing more can be done; the error being reported says what went wrong
    }
  }
}

/** Writes a whole file of records atomically. */
export function writeRecords(target: string, records: Iterable<Uint8Array>): number {
  const w = new RecordWriter(target);
  try {
    for (const r of records) w.write(r);
  } catch (e) {
    w.abort();
    throw e;
  }
  w.close();
  return w.count;
}
