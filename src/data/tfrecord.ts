import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { tempPathFor } from '../util/atomic-write';
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
  /** Go on past records whose CRC or length is bad instead of failing; `onCorrupt` is told of each. */
  skipCorrupt?: boolean;
  onCorrupt?: (info: CorruptRecord) => void;
}

export interface CorruptRecord {
  file: string;
  index: number;
  offset: number;
  reason: string;
}

/** Largest record we accept; a bigger length field means corruption, not data. */
const MAX_RECORD_BYTES = 1 << 30;
const CHUNK = 1 << 20;

function corruptError(c: CorruptRecord): UserError {
  return new UserError(
    `${c.file}: record ${c.index} at byte ${c.offset} is corrupt (${c.reason}); ` +
      `recreate the file, or pass --skip-corrupt to read past it`,
  );
}

/**
 * Streams the records of a file, holding at most one record plus a chunk in memory.
 * Throws a UserError naming the file, the record index and the byte offset on a bad CRC or a
 * truncated record (unless skipCorrupt; after a bad length field nothing further can be trusted,
 * so reading stops there).
 */
export function* readRecords(file: string, opts: ReadOptions = {}): Generator<Uint8Array> {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code}`);
  }
  const size = fs.fstatSync(fd).size;
  let buf = Buffer.alloc(0);
  let bufStart = 0; // file offset of buf[0]
  let pos = 0; // file offset of the next record
  let index = 0;
  const ensure = (end: number): boolean => {
    // make buf cover [pos, end) if the file has those bytes
    if (end > size) return false;
    if (pos >= bufStart && end <= bufStart + buf.length) return true;
    const want = Math.max(end - pos, CHUNK);
    const len = Math.min(want, size - pos);
    const fresh = Buffer.allocUnsafe(len);
    let got = 0;
    while (got < len) got += fs.readSync(fd, fresh, got, len - got, pos + got);
    buf = fresh;
    bufStart = pos;
    return true;
  };
  const bad = (reason: string): CorruptRecord => ({ file, index, offset: pos, reason });
  try {
    while (pos < size) {
      if (!ensure(pos + HEADER_BYTES)) {
        const c = bad('truncated header');
        if (opts.skipCorrupt) { opts.onCorrupt?.(c); return; }
        throw corruptError(c);
      }
      const o = pos - bufStart;
      const lenBig = buf.readBigUInt64LE(o);
      if (buf.readUInt32LE(o + 8) !== maskedCrc32c(buf, o, o + 8) || lenBig > BigInt(MAX_RECORD_BYTES)) {
        const c = bad('length CRC mismatch');
        if (opts.skipCorrupt) { opts.onCorrupt?.(c); return; }
        throw corruptError(c);
      }
      const len = Number(lenBig);
      const end = pos + HEADER_BYTES + len + FOOTER_BYTES;
      if (!ensure(end)) {
        const c = bad('truncated data');
        if (opts.skipCorrupt) { opts.onCorrupt?.(c); return; }
        throw corruptError(c);
      }
      const d = pos - bufStart + HEADER_BYTES;
      const data = buf.subarray(d, d + len);
      if (buf.readUInt32LE(d + len) !== maskedCrc32c(buf, d, d + len)) {
        const c = bad('data CRC mismatch');
        if (!opts.skipCorrupt) throw corruptError(c);
        opts.onCorrupt?.(c);
      } else {
        // copy: the chunk buffer is reused, and callers keep records
        yield Uint8Array.prototype.slice.call(data);
      }
      pos = end;
      index++;
    }
  } finally {
    fs.closeSync(fd);
  }
}

export function readAllRecords(file: string, opts: ReadOptions = {}): Uint8Array[] {
  return Array.from(readRecords(file, opts));
}

/**
 * Writes records to a temporary file beside the target; `close()` fsyncs and renames it into place,
 * so readers never see a half-written file. `abort()` removes the temporary file.
 */
export class RecordWriter {
  private fd: number | null;
  private readonly tmp: string;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  count = 0;

  constructor(readonly target: string) {
    fs.mkdirSync(path.dirname(target), { recursive: true });
    this.tmp = tempPathFor(target);
    this.fd = fs.openSync(this.tmp, 'w');
  }

  write(record: Uint8Array): void {
    if (this.fd === null) throw new Error(`RecordWriter for ${this.target} is closed`);
    const framed = frameRecord(record);
    this.pending.push(framed);
    this.pendingBytes += framed.length;
    this.count++;
    if (this.pendingBytes >= CHUNK) this.flushPending();
  }

  private flushPending(): void {
    if (this.fd === null || this.pending.length === 0) return;
    const all = Buffer.concat(this.pending, this.pendingBytes);
    let off = 0;
    while (off < all.length) off += fs.writeSync(this.fd, all, off, all.length - off);
    this.pending = [];
    this.pendingBytes = 0;
  }

  close(): void {
    if (this.fd === null) return;
    try {
      this.flushPending();
      fs.fsyncSync(this.fd);
    } catch (e) {
      this.abort();
      throw e;
    }
    fs.closeSync(this.fd);
    this.fd = null;
    fs.renameSync(this.tmp, this.target);
  }

  abort(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    fs.rmSync(this.tmp, { force: true });
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
