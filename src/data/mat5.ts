import * as fs from 'fs';
import { pipeline, type Readable } from 'stream';
import * as zlib from 'zlib';
import { UserError } from '../errors';
import { bufferRange, ByteReader, fileRange, reasonOf, TruncatedError } from './byte-reader';

/**
 * MATLAB level-5 MAT-files (what MATLAB writes with -v6 and -v7, and scipy.io.savemat), read
 * without loading them whole: SVHN's extra_32x32.mat inflates to 1.6 GB of pixels, which are
 * streamed (`streamUint8`) rather than held.
 *
 * Layout: a 128-byte header (text, version 0x0100, endian indicator "IM" or "MI"), then one data
 * element per variable: miMATRIX, or miCOMPRESSED holding a zlib stream of one miMATRIX (-v7).
 * A matrix holds sub-elements: array flags (class, complex/logical bits), dimensions, name, real
 * part, imaginary part. Each element has an 8-byte tag (type, byte count) and is padded to 8 bytes;
 * an element of at most 4 bytes may use the small format, packed into its tag (short names such
 * as `X` and `y` always are). MATLAB may store a double array's values in a narrower integer type;
 * the reader converts from whatever type the data element has.
 *
 * Arrays are column-major: element (i, j, k) of dims [A, B, C] is value i + A·(j + B·k).
 *
 * Every size read from the file is checked against the bytes that remain before anything is
 * allocated or read, so a corrupt or hostile file ends in a UserError naming the file, never in a
 * hang or an absurd allocation.
 */

export type MatSource = string | Uint8Array;

export interface MatVariable {
  name: string;
  /** MATLAB class: double, single, int8 … uint64, char, cell, struct, sparse, … */
  class: string;
  dims: number[];
  complex: boolean;
  logical: boolean;
}

const MI_INT8 = 1;
const MI_UINT8 = 2;
const MI_INT32 = 5;
const MI_UINT32 = 6;
const MI_MATRIX = 14;
const MI_COMPRESSED = 15;
const MI_UTF8 = 16;

/** Bytes per value of each numeric and text data type. */
const TYPE_BYTES: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4 };
const TYPE_NAMES: Record<number, string> = {
  1: 'int8', 2: 'uint8', 3: 'int16', 4: 'uint16', 5: 'int32', 6: 'uint32', 7: 'single', 9: 'double', 12: 'int64', 13: 'uint64', 16: 'utf8', 17: 'utf16', 18: 'utf32',
};
const CLASS_NAMES = ['', 'cell', 'struct', 'object', 'char', 'sparse', 'double', 'single', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'function', 'opaque'];
const NUMERIC = new Set(['double', 'single', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64']);

/** zlib cannot expand data by more than about 1032:1; a larger claim is corruption. */
const MAX_INFLATE_RATIO = 1032;
/** What readNumbers/readUint8 hold in memory by default; bigger variables must be streamed. */
const DEFAULT_MAX_BYTES = 1 << 30;

interface Tag {
  type: number;
  nbytes: number;
  /** The data of a small-format element, else null (the data follows the tag). */
  inline: Buffer | null;
}

interface Element {
  /** Byte offset of the element's tag in the file. */
  offset: number;
  nbytes: number;
  compressed: boolean;
  variable: MatVariable | null;
}

/** An opened variable, positioned at the first byte of its real part. */
interface OpenVariable {
  variable: MatVariable;
  reader: ByteReader;
  real: Tag;
  /** Bytes of the real part still to read (0 when inline). */
  count: number;
  /**
   * Called once the real part has been read: a compressed element must end with its matrix, and
   * its zlib stream with the element (what scipy.io.loadmat checks too), else the file is corrupt.
   */
  finish: () => Promise<void>;
}

class MatFormatError extends Error {}

const pad8 = (n: number): number => (8 - (n % 8)) % 8;

export class MatFile {
  private constructor(
    readonly label: string,
    private readonly source: MatSource,
    readonly size: number,
    readonly littleEndian: boolean,
    readonly headerText: string,
    private readonly elements: Element[],
  ) {}

  /**
   * Reads the header and the name, class and size of every variable (inflating only the first
   * bytes of compressed ones). `label` names the file in messages (a path, or an archive member).
   */
  static async open(source: MatSource, label?: string): Promise<MatFile> {
    const name = label ?? (typeof source === 'string' ? source : 'MAT-file');
    let size: number;
    try {
      size = typeof source === 'string' ? fs.statSync(source).size : source.byteLength;
    } catch (e) {
      throw new UserError(`cannot read ${name}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : reasonOf(e)}`);
    }
    const head = readAt(source, 0, Math.min(128, size));
    const text = head.toString('latin1', 0, Math.min(116, head.length)).replace(/[\0 ]+$/, '');
    if (text.startsWith('MATLAB 7.3')) {
      throw new UserError(`${name}: is a MATLAB 7.3 (HDF5) MAT-file, which is not read; save it with -v7 or use the original download`);
    }
    const endian = head.toString('latin1', 126, 128);
    if (size >= 4 && head.subarray(0, 4).includes(0)) {
      // the level-5 header text never holds a zero byte there; a level-4 file starts with one
      throw new UserError(`${name}: not a MATLAB level-5 MAT-file (it starts like a level-4 file, which is not read)`);
    }
    if (size < 128 || (endian !== 'IM' && endian !== 'MI')) {
      throw new UserError(`${name}: not a MATLAB level-5 MAT-file (no MAT-file header); expected a .mat file as MATLAB -v6/-v7 or scipy.io.savemat write them`);
    }
    const le = endian === 'IM';
    const version = le ? head.readUInt16LE(124) : head.readUInt16BE(124);
    if (version !== 0x0100) throw new UserError(`${name}: unknown MAT-file version 0x${version.toString(16)} (expected 0x0100)`);

    const elements: Element[] = [];
    let off = 128;
    while (off < size) {
      if (size - off < 8) {
        // a few bytes of padding after the last element are harmless
        if (readAt(source, off, size).every((b) => b === 0)) break;
        throw new UserError(`${name}: truncated (${size - off} stray bytes at byte ${off})`);
      }
      const t = readAt(source, off, off + 8);
      const type = le ? t.readUInt32LE(0) : t.readUInt32BE(0);
      const nbytes = le ? t.readUInt32LE(4) : t.readUInt32BE(4);
      if (type !== MI_MATRIX && type !== MI_COMPRESSED) {
        throw new UserError(`${name}: corrupt MAT-file: element at byte ${off} has type ${type}, expected a matrix or compressed matrix`);
      }
      if (nbytes > size - off - 8) {
        throw new UserError(`${name}: truncated: the element at byte ${off} needs ${nbytes} bytes, only ${size - off - 8} remain; download or copy the file again`);
      }
      const el: Element = { offset: off, nbytes, compressed: type === MI_COMPRESSED, variable: null };
      if (nbytes > 0) {
        const opened = await openElement(source, name, le, el, false);
        el.variable = opened.variable;
        opened.reader.close();
      }
      elements.push(el);
      off += 8 + nbytes;
    }
    return new MatFile(name, source, size, le, text, elements);
  }

  get variables(): MatVariable[] {
    return this.elements.flatMap((e) => (e.variable ? [e.variable] : []));
  }

  /** The variable called `name`; a UserError listing what the file holds when there is none. */
  variable(name: string): MatVariable {
    const e = this.element(name);
    return e.variable as MatVariable;
  }

  private element(name: string): Element {
    const e = this.elements.find((x) => x.variable?.name === name);
    if (!e) {
      const names = this.variables.map((v) => v.name);
      throw new UserError(`${this.label}: has no variable '${name}' (it holds: ${names.length ? names.join(', ') : 'nothing'})`);
    }
    return e;
  }

  private async open(name: string): Promise<OpenVariable> {
    const v = this.variable(name);
    if (!NUMERIC.has(v.class)) throw new UserError(`${this.label}: variable '${name}' is a ${v.class} array, expected numbers`);
    if (v.complex) throw new UserError(`${this.label}: variable '${name}' is complex, expected real numbers`);
    return openElement(this.source, this.label, this.littleEndian, this.element(name), true);
  }

  /** Number of values of a variable (the product of its dimensions). */
  numel(name: string): number {
    return this.variable(name).dims.reduce((a, b) => a * b, 1);
  }

  /** The values, in column-major order, as doubles (int64 beyond 2^53 loses precision). */
  async readNumbers(name: string, maxBytes = DEFAULT_MAX_BYTES): Promise<Float64Array> {
    const o = await this.open(name);
    try {
      const raw = await this.readRaw(o, maxBytes);
      await this.finish(o);
      return toNumbers(raw, o.real.type, this.littleEndian);
    } finally {
      o.reader.close();
    }
  }

  /** The values as bytes; values outside 0..255 or not integers are an error. */
  async readUint8(name: string, maxBytes = DEFAULT_MAX_BYTES): Promise<Uint8Array> {
    const o = await this.open(name);
    try {
      const raw = await this.readRaw(o, maxBytes);
      await this.finish(o);
      return o.real.type === MI_UINT8 ? raw : this.toUint8(name, toNumbers(raw, o.real.type, this.littleEndian), 0);
    } finally {
      o.reader.close();
    }
  }

  /**
   * The values as bytes, in column-major order, in pieces of any size (their concatenation is the
   * whole array), without holding the variable in memory.
   */
  async *streamUint8(name: string): AsyncGenerator<Uint8Array> {
    const o = await this.open(name);
    try {
      if (o.real.inline) {
        const raw = o.real.inline;
        await this.finish(o);
        yield o.real.type === MI_UINT8 ? raw : this.toUint8(name, toNumbers(raw, o.real.type, this.littleEndian), 0);
        return;
      }
      const size = TYPE_BYTES[o.real.type];
      let carry: Buffer = Buffer.alloc(0);
      let index = 0;
      try {
        for await (const p of o.reader.pieces(o.count, `data of variable '${name}'`)) {
          if (size === 1 && o.real.type === MI_UINT8) {
            yield p;
            continue;
          }
          const all = carry.length ? Buffer.concat([carry, p]) : p;
          const whole = all.length - (all.length % size);
          carry = Buffer.from(all.subarray(whole));
          const vals = toNumbers(all.subarray(0, whole), o.real.type, this.littleEndian);
          yield this.toUint8(name, vals, index);
          index += vals.length;
        }
      } catch (e) {
        throw dataError(this.label, name, e);
      }
      await this.finish(o);
    } finally {
      o.reader.close();
    }
  }

  private async finish(o: OpenVariable): Promise<void> {
    try {
      await o.finish();
    } catch (e) {
      throw dataError(this.label, o.variable.name, e);
    }
  }

  private async readRaw(o: OpenVariable, maxBytes: number): Promise<Uint8Array> {
    if (o.real.inline) return new Uint8Array(o.real.inline);
    if (o.count > maxBytes) {
      throw new UserError(`${this.label}: variable '${o.variable.name}' holds ${o.count} bytes, more than the ${maxBytes} read into memory`);
    }
    try {
      const buf = await o.reader.read(o.count, `data of variable '${o.variable.name}'`);
      // copy: the reader's buffer may be a view into a larger chunk
      return new Uint8Array(buf);
    } catch (e) {
      throw dataError(this.label, o.variable.name, e);
    }
  }

  private toUint8(name: string, vals: Float64Array, firstIndex: number): Uint8Array {
    const out = new Uint8Array(vals.length);
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i];
      if (!(v >= 0 && v <= 255 && Number.isInteger(v))) {
        throw new UserError(`${this.label}: variable '${name}' holds ${v} at index ${firstIndex + i}, expected 8-bit pixel values 0..255`);
      }
      out[i] = v;
    }
    return out;
  }
}

function dataError(label: string, name: string, e: unknown): UserError {
  if (e instanceof UserError) return e;
  if (e instanceof MatFormatError) return new UserError(`${label}: corrupt MAT-file: ${e.message}`);
  if (e instanceof TruncatedError) return new UserError(`${label}: variable '${name}' is truncated (${e.message}); download or copy the file again`);
  return new UserError(`${label}: cannot read variable '${name}' (${reasonOf(e)}); download or copy the file again`);
}

function readAt(source: MatSource, start: number, end: number): Buffer {
  if (typeof source !== 'string') return Buffer.from(source.buffer, source.byteOffset + start, end - start);
  const out = Buffer.alloc(end - start);
  const fd = fs.openSync(source, 'r');
  try {
    let got = 0;
    while (got < out.length) {
      const n = fs.readSync(fd, out, got, out.length - got, start + got);
      if (n === 0) break;
      got += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

function range(source: MatSource, start: number, end: number): Readable {
  return typeof source === 'string' ? fileRange(source, start, end) : bufferRange(source, start, end);
}

/**
 * A reader over the matrix of an element, past its header and, when `toData`, positioned at the
 * real part. For a compressed element the reader inflates as it goes; closing it stops the work.
 */
async function openElement(source: MatSource, label: string, le: boolean, el: Element, toData: boolean): Promise<OpenVariable> {
  const start = el.offset + 8;
  const end = start + el.nbytes;
  let reader: ByteReader;
  let limit: number;
  let inflate: zlib.Inflate | null = null;
  try {
    if (el.compressed) {
      inflate = zlib.createInflate({ chunkSize: 1 << 18 });
      const stream = pipeline(range(source, start, end), inflate, () => undefined);
      reader = new ByteReader(stream, () => stream.destroy());
      const inner = await readTag(reader, le, 'compressed matrix tag');
      if (inner.type !== MI_MATRIX || inner.inline) {
        throw new MatFormatError(`the compressed element at byte ${el.offset} holds type ${inner.type}, expected a matrix`);
      }
      if (inner.nbytes > el.nbytes * MAX_INFLATE_RATIO + 1024) {
        throw new MatFormatError(`the compressed element at byte ${el.offset} claims ${inner.nbytes} bytes from ${el.nbytes} compressed bytes`);
      }
      limit = 8 + inner.nbytes;
    } else {
      const stream = range(source, start, end);
      reader = new ByteReader(stream, () => stream.destroy());
      limit = el.nbytes;
    }
  } catch (e) {
    throw elementError(label, el, e);
  }
  try {
    const opened = await readMatrix(reader, le, limit, toData);
    const r = reader;
    const z = inflate;
    opened.finish = async () => {
      if (!opened.real.inline) await r.skip(Math.min(pad8(opened.real.nbytes), Math.max(0, limit - r.position)), 'padding');
      if (!z) return;
      if (!(await r.atEnd())) throw new MatFormatError(`the compressed element at byte ${el.offset} holds more than its matrix`);
      if (z.bytesWritten !== el.nbytes) {
        throw new MatFormatError(`the compressed element at byte ${el.offset} has ${el.nbytes - z.bytesWritten} bytes after its zlib stream`);
      }
    };
    return opened;
  } catch (e) {
    reader.close();
    throw elementError(label, el, e);
  }
}

function elementError(label: string, el: Element, e: unknown): UserError {
  if (e instanceof UserError) return e;
  const where = el.variable ? `variable '${el.variable.name}'` : `the element at byte ${el.offset}`;
  if (e instanceof MatFormatError) return new UserError(`${label}: corrupt MAT-file: ${e.message}`);
  if (e instanceof TruncatedError) return new UserError(`${label}: ${where} is truncated (${e.message}); download or copy the file again`);
  return new UserError(`${label}: cannot read ${where} (${reasonOf(e)}); download or copy the file again`);
}

async function readTag(r: ByteReader, le: boolean, what: string): Promise<Tag> {
  const t = await r.read(8, what);
  const w0 = le ? t.readUInt32LE(0) : t.readUInt32BE(0);
  const small = w0 >>> 16;
  if (small !== 0) {
    if (small > 4) throw new MatFormatError(`${what}: a small data element of ${small} bytes (at most 4 fit)`);
    return { type: w0 & 0xffff, nbytes: small, inline: Buffer.from(t.subarray(4, 4 + small)) };
  }
  return { type: w0, nbytes: le ? t.readUInt32LE(4) : t.readUInt32BE(4), inline: null };
}

/** The bytes of a sub-element (inline or following its tag), with its padding skipped. */
async function readSub(r: ByteReader, tag: Tag, limit: number, what: string): Promise<Buffer> {
  if (tag.inline) return tag.inline;
  if (tag.nbytes > limit - r.position) throw new MatFormatError(`${what} claims ${tag.nbytes} bytes, only ${Math.max(0, limit - r.position)} remain in its matrix`);
  const data = Buffer.from(await r.read(tag.nbytes, what));
  await r.skip(Math.min(pad8(tag.nbytes), limit - r.position), `${what} padding`);
  return data;
}

async function readMatrix(r: ByteReader, le: boolean, limit: number, toData: boolean): Promise<OpenVariable> {
  const u32 = (b: Buffer, i: number): number => (le ? b.readUInt32LE(i) : b.readUInt32BE(i));
  const i32 = (b: Buffer, i: number): number => (le ? b.readInt32LE(i) : b.readInt32BE(i));

  const flagsTag = await readTag(r, le, 'array flags');
  if (flagsTag.type !== MI_UINT32 || flagsTag.nbytes !== 8) throw new MatFormatError(`array flags have type ${flagsTag.type} and ${flagsTag.nbytes} bytes, expected uint32 and 8`);
  const flags = await readSub(r, flagsTag, limit, 'array flags');
  const word = u32(flags, 0);
  const classId = word & 0xff;
  const cls = CLASS_NAMES[classId] || `class ${classId}`;

  const dimsTag = await readTag(r, le, 'dimensions');
  if (dimsTag.type !== MI_INT32 || dimsTag.nbytes % 4 !== 0 || dimsTag.nbytes === 0) {
    throw new MatFormatError(`dimensions have type ${dimsTag.type} and ${dimsTag.nbytes} bytes, expected int32 values`);
  }
  if (dimsTag.nbytes > 4 * 64) throw new MatFormatError(`${dimsTag.nbytes / 4} dimensions`);
  const dimBytes = await readSub(r, dimsTag, limit, 'dimensions');
  const dims: number[] = [];
  for (let i = 0; i < dimsTag.nbytes; i += 4) {
    const d = i32(dimBytes, i);
    if (d < 0) throw new MatFormatError(`negative dimension ${d}`);
    dims.push(d);
  }

  const nameTag = await readTag(r, le, 'array name');
  if (nameTag.type !== MI_INT8 && nameTag.type !== MI_UINT8 && nameTag.type !== MI_UTF8) throw new MatFormatError(`array name has type ${nameTag.type}, expected text`);
  if (nameTag.nbytes > 4096) throw new MatFormatError(`a ${nameTag.nbytes}-byte array name`);
  const name = (await readSub(r, nameTag, limit, 'array name')).toString('utf8');

  const variable: MatVariable = { name, class: cls, dims, complex: (word & 0x800) !== 0, logical: (word & 0x200) !== 0 };
  const empty = Buffer.alloc(0);
  const finish = async (): Promise<void> => undefined; // replaced by openElement
  if (!toData) return { variable, reader: r, real: { type: MI_UINT8, nbytes: 0, inline: empty }, count: 0, finish };

  const what = `real part of '${name}'`;
  const real = await readTag(r, le, what);
  const size = TYPE_BYTES[real.type];
  if (size === undefined || real.type === MI_UTF8 || real.type === 17 || real.type === 18) {
    throw new MatFormatError(`${what} has data type ${real.type}, not a numeric type`);
  }
  const numel = dims.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(numel) || numel * size !== real.nbytes) {
    throw new MatFormatError(`'${name}' has dimensions ${dims.join('x')} (${numel} values) but ${real.nbytes} bytes of ${TYPE_NAMES[real.type]} data`);
  }
  if (!real.inline && real.nbytes > limit - r.position) {
    throw new MatFormatError(`${what} claims ${real.nbytes} bytes, only ${Math.max(0, limit - r.position)} remain in its matrix`);
  }
  return { variable, reader: r, real, count: real.inline ? 0 : real.nbytes, finish };
}

/** Values of a numeric data element as doubles. */
function toNumbers(raw: Uint8Array, type: number, le: boolean): Float64Array {
  const size = TYPE_BYTES[type];
  const n = Math.floor(raw.byteLength / size);
  const out = new Float64Array(n);
  if (type === MI_UINT8) {
    out.set(raw.subarray(0, n));
    return out;
  }
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const get: (i: number) => number = {
    1: (i: number) => dv.getInt8(i),
    3: (i: number) => dv.getInt16(i * 2, le),
    4: (i: number) => dv.getUint16(i * 2, le),
    5: (i: number) => dv.getInt32(i * 4, le),
    6: (i: number) => dv.getUint32(i * 4, le),
    7: (i: number) => dv.getFloat32(i * 4, le),
    9: (i: number) => dv.getFloat64(i * 8, le),
    12: (i: number) => Number(dv.getBigInt64(i * 8, le)),
    13: (i: number) => Number(dv.getBigUint64(i * 8, le)),
  }[type] as (i: number) => number;
  for (let i = 0; i < n; i++) out[i] = get(i);
  return out;
}
