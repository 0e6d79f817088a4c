import * as fs from 'fs';
import { Readable } from 'stream';

/**
 * Exact-length reads over a stream of chunks (a file range, a gunzip or inflate stream), for the
 * archive and .mat parsers. Large payloads come out piece by piece (`pieces`), so a 2 GiB member
 * never has to sit in memory; small structures come out whole (`read`).
 *
 * Running out of data throws a TruncatedError; errors of the underlying stream (zlib's "unexpected
 * end of file", a read error) pass through. Callers add the file name and turn both into UserErrors.
 */
export class TruncatedError extends Error {
  constructor(what: string, at: number, missing: number) {
    super(`data ends at byte ${at}, ${missing} bytes short of the ${what}`);
    this.name = 'TruncatedError';
  }
}

const EMPTY = Buffer.alloc(0);

export class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private buf: Buffer = EMPTY;
  private off = 0;
  private ended = false;
  /** Bytes handed out or skipped so far. */
  position = 0;

  constructor(source: AsyncIterable<Buffer>, private readonly onClose?: () => void) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Makes at least one unread byte available; false at the end of the data. */
  private async fill(): Promise<boolean> {
    while (this.off >= this.buf.length) {
      if (this.ended) return false;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        return false;
      }
      this.buf = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
      this.off = 0;
    }
    return true;
  }

  /** Exactly n bytes, as one buffer (n should be small: it is allocated whole). */
  async read(n: number, what: string): Promise<Buffer> {
    if (n === 0) return EMPTY;
    if (!(await this.fill())) throw new TruncatedError(what, this.position, n);
    if (this.buf.length - this.off >= n) {
      const out = this.buf.subarray(this.off, this.off + n);
      this.off += n;
      this.position += n;
      return out;
    }
    const parts: Buffer[] = [];
    let got = 0;
    for await (const p of this.pieces(n, what)) {
      parts.push(p);
      got += p.length;
    }
    return Buffer.concat(parts, got);
  }

  /**
   * Exactly n bytes in the sizes the stream delivers them (never more than n in all). A consumer
   * that stops early leaves the rest unread, and `position` says how far it got.
   */
  async *pieces(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw new TruncatedError(what, this.position, left);
      const take = Math.min(left, this.buf.length - this.off);
      const out = this.buf.subarray(this.off, this.off + take);
      this.off += take;
      this.position += take;
      left -= take;
      yield out;
    }
  }

  async skip(n: number, what: string): Promise<void> {
    for await (const _ of this.pieces(n, what)) {
      // discard
    }
  }

  /** True when no byte is left. */
  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }

  /** Stops the underlying streams (an inflate of a 1 GiB variable read only for its header). */
  close(): void {
    this.onClose?.();
  }
}

/** Bytes [start, end) of a file as a stream, read 1 MiB at a time. */
export function fileRange(file: string, start: number, end: number): Readable {
  if (end <= start) return Readable.from([]);
  return fs.createReadStream(file, { start, end: end - 1, highWaterMark: 1 << 20 });
}

/** Bytes [start, end) of a buffer as a stream of 1 MiB pieces, without copying. */
export function bufferRange(buf: Uint8Array, start: number, end: number): Readable {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  function* gen(): Generator<Buffer> {
    for (let p = start; p < end; p += 1 << 20) yield b.subarray(p, Math.min(end, p + (1 << 20)));
  }
  return Readable.from(gen(), { objectMode: false });
}

/** A one-line reason from a stream or parser error, for messages. */
export function reasonOf(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const msg = (err?.message ?? String(e)).split('\n')[0];
  if (err?.code === 'Z_BUF_ERROR' && /unexpected end/.test(msg)) return 'the compressed data ends early: the file is truncated';
  if (typeof err?.code === 'string' && err.code.startsWith('Z_')) return `corrupt compressed data (zlib: ${msg})`;
  return msg;
}
