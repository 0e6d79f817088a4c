import * as fs from 'fs';
import { pipeline, Readable } from 'stream';
import * as zlib from 'zlib';
import { UserError } from '../errors';
import { ByteReader, fileRange, reasonOf, TruncatedError } from './byte-reader';

/**
 * Reads the members of a .tar.gz (or plain .tar) archive as streams, in archive order, without
 * extracting anything to disk: the dataset archives hold a few members of up to 2.7 GB (STL-10's
 * unlabelled images), which are converted as they stream past.
 *
 * Formats: POSIX ustar and the older v7 header, GNU long names (type L), and pax extended headers
 * (type x: `path` and `size`; global headers are ignored). Member names never become file paths,
 * so names with `..` are harmless here.
 */

export interface TarEntry {
  /** Path inside the archive, e.g. `cifar-10-batches-bin/data_batch_1.bin`. */
  name: string;
  size: number;
  type: 'file' | 'directory' | 'other';
  /**
   * The member's bytes, piece by piece. Read it before asking the archive for the next entry;
   * whatever is left unread is skipped.
   */
  body(): AsyncGenerator<Buffer>;
}

export interface TarOptions {
  /** Called as the archive file is read: bytes read so far (compressed), and the file size. */
  onBytes?: (done: number, total: number) => void;
}

const BLOCK = 512;
/** Pax and GNU long-name records are small; a larger one means corruption. */
const MAX_META_BYTES = 1 << 20;

function cstring(b: Buffer, start: number, len: number): string {
  const end = b.indexOf(0, start);
  return b.toString('utf8', start, end < 0 || end > start + len ? start + len : end);
}

/** A numeric header field: octal text, or GNU base-256 when the high bit of the first byte is set. */
function numberField(b: Buffer, start: number, len: number): number | null {
  if (b[start] & 0x80) {
    let v = b[start] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[start + i];
    return Number.isSafeInteger(v) ? v : null;
  }
  const text = b.toString('latin1', start, start + len).replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return null;
  return parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  const stored = numberField(h, 148, 8);
  if (stored === null) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  // some old tars summed signed bytes
  return stored === unsigned || stored === signed;
}

function isZeroBlock(h: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (h[i] !== 0) return false;
  return true;
}

/** `<len> <key>=<value>\n` records of a pax extended header. */
function parsePax(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let p = 0;
  while (p < b.length) {
    const sp = b.indexOf(0x20, p);
    if (sp < 0) break;
    const len = Number(b.toString('latin1', p, sp));
    if (!Number.isInteger(len) || len <= 0 || p + len > b.length) break;
    const rec = b.toString('utf8', sp + 1, p + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    p += len;
  }
  return out;
}

function isGzip(file: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const n = fs.readSync(fd, head, 0, 2, 0);
    return n === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

function countBytes(src: Readable, total: number, report: (done: number, total: number) => void): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    let done = 0;
    for await (const c of src) {
      done += (c as Buffer).length;
      report(done, total);
      yield c as Buffer;
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

/** The archive's (decompressed) bytes as a ByteReader; closing it stops reading the file. */
function openArchive(file: string, opts: TarOptions): ByteReader {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : reasonOf(e)}`);
  }
  const gz = isGzip(file);
  const raw = fileRange(file, 0, size);
  const counted = opts.onBytes ? countBytes(raw, size, opts.onBytes) : raw;
  // pipeline forwards errors to the last stream (our iterator sees them) and tears both down
  const stream: Readable = gz ? pipeline(counted, zlib.createGunzip(), () => undefined) : counted;
  return new ByteReader(stream, () => stream.destroy());
}

function tarError(file: string, e: unknown): UserError {
  if (e instanceof UserError) return e;
  if (e instanceof TruncatedError) return new UserError(`${file}: archive is truncated (${e.message}); download or copy it again`);
  return new UserError(`${file}: cannot read the archive (${reasonOf(e)}); download or copy it again`);
}

/**
 * Members of `file` in archive order. Throws a UserError naming the file when it is not a tar
 * archive, is truncated, or its compressed data is corrupt.
 */
export async function* readTar(file: string, opts: TarOptions = {}): AsyncGenerator<TarEntry> {
  const r = openArchive(file, opts);
  try {
    let longName: string | null = null;
    let pax: Record<string, string> = {};
    let first = true;
    for (;;) {
      let h: Buffer;
      try {
        if (await r.atEnd()) {
          if (first) throw new UserError(`${file}: is empty, not a tar archive`);
          return; // no end-of-archive blocks: tolerated, as GNU tar does
        }
        h = await r.read(BLOCK, 'tar header');
      } catch (e) {
        throw tarError(file, e);
      }
      if (isZeroBlock(h)) return;
      const at = r.position - BLOCK;
      if (!checksumOk(h)) {
        throw new UserError(
          first ? `${file}: not a tar archive (no valid tar header at its start)` : `${file}: corrupt tar header at byte ${at} of the unpacked archive; download or copy it again`,
        );
      }
      first = false;
      const headerSize = numberField(h, 124, 12);
      if (headerSize === null) throw new UserError(`${file}: corrupt tar header at byte ${at} (bad size field)`);
      const flag = String.fromCharCode(h[156] || 0x30);
      let size = headerSize;
      const padded = (n: number): number => Math.ceil(n / BLOCK) * BLOCK;

      if (flag === 'L' || flag === 'x' || flag === 'g') {
        if (size > MAX_META_BYTES) throw new UserError(`${file}: corrupt tar header at byte ${at} (a ${size}-byte name record)`);
        let data: Buffer;
        try {
          data = await r.read(size, 'tar name record');
          await r.skip(padded(size) - size, 'tar padding');
        } catch (e) {
          throw tarError(file, e);
        }
        if (flag === 'L') longName = cstring(data, 0, data.length);
        else if (flag === 'x') pax = parsePax(data);
        continue;
      }

      let name = cstring(h, 0, 100);
      if (h.toString('latin1', 257, 262) === 'ustar') {
        const prefix = cstring(h, 345, 155);
        if (prefix) name = `${prefix}/${name}`;
      }
      if (longName !== null) name = longName;
      if (pax.path !== undefined) name = pax.path;
      if (pax.size !== undefined && /^\d+$/.test(pax.size)) size = Number(pax.size);
      name = name.replace(/\/+$/, ''); // folders are often stored as `name/`
      longName = null;
      pax = {};

      const type: TarEntry['type'] = flag === '0' || flag === '7' ? 'file' : flag === '5' ? 'directory' : 'other';
      // links, devices and fifos have no data whatever their size field says
      const dataSize = type === 'file' || type === 'other' ? (['1', '2', '3', '4', '6'].includes(flag) ? 0 : size) : 0;
      let left = dataSize;
      const entry: TarEntry = {
        name,
        size: dataSize,
        type,
        async *body() {
          try {
            for await (const p of r.pieces(left, `member ${name}`)) {
              left -= p.length;
              yield p;
            }
          } catch (e) {
            throw tarError(file, e);
          }
        },
      };
      yield entry;
      try {
        await r.skip(left + padded(dataSize) - dataSize, `member ${name}`);
      } catch (e) {
        throw tarError(file, e);
      }
    }
  } finally {
    r.close();
  }
}

/** A member's bytes as one buffer (for members small enough to hold: a CIFAR batch, a label file). */
export async function readEntry(entry: TarEntry): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const p of entry.body()) {
    parts.push(p);
    n += p.length;
  }
  return Buffer.concat(parts, n);
}
