import * as fs from 'fs';
import * as os from 'os';
import { UserError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';

/**
 * NumPy .npy files (format 1.0 when writing; 1.0, 2.0 and 3.0 when reading), little-endian, C order.
 * Written byte-for-byte as numpy.save writes them, so `numpy.load` reads ours and diffs stay quiet.
 */

export type NpyDtype = 'int64' | 'int32' | 'uint8' | 'float32' | 'float64';

export interface NpyDataOf {
  int64: BigInt64Array;
  int32: Int32Array;
  uint8: Uint8Array;
  float32: Float32Array;
  float64: Float64Array;
}

export type NpyArray = { [D in NpyDtype]: { dtype: D; shape: number[]; data: NpyDataOf[D] } }[NpyDtype];

const DESCR: Record<NpyDtype, string> = {
  int64: '<i8',
  int32: '<i4',
  uint8: '|u1',
  float32: '<f4',
  float64: '<f8',
};
const ITEMSIZE: Record<NpyDtype, number> = { int64: 8, int32: 4, uint8: 1, float32: 4, float64: 8 };
const FROM_DESCR = new Map<string, NpyDtype>([
  ['<i8', 'int64'],
  ['<i4', 'int32'],
  ['|u1', 'uint8'],
  ['<u1', 'uint8'],
  ['<f4', 'float32'],
  ['<f8', 'float64'],
]);

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ALIGN = 64;
/** numpy leaves room for the leading axis to grow to this many digits without rewriting the file. */
const GROWTH_AXIS_MAX_DIGITS = 21;
const LITTLE_ENDIAN_HOST = os.endianness() === 'LE';

/** An int64 array from ordinary numbers (class indices, counts). */
export function int64Array(values: ArrayLike<number>): BigInt64Array {
  const out = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isSafeInteger(v)) throw new Error(`int64 value must be an integer, got ${v}`);
    out[i] = BigInt(v);
  }
  return out;
}

/** Python's repr of a shape tuple: (), (3,), (2, 3). */
function shapeRepr(shape: number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

function checkShape(shape: number[], length: number): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new Error(`npy shape entries must be non-negative integers, got [${shape.join(', ')}]`);
  }
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== length) throw new Error(`npy shape [${shape.join(', ')}] holds ${n} values but the data has ${length}`);
}

function npyHeader(dtype: NpyDtype, shape: number[]): Buffer {
  // keys sorted, as numpy writes them
  let dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) dict += ' '.repeat(GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length);
  const hlen = dict.length + 1; // + '\n'
  const prefix = MAGIC.length + 2 + 2; // magic, version, uint16 header length
  // numpy pads by a full ALIGN when already aligned; copied so headers match byte for byte
  const padlen = ALIGN - ((prefix + hlen) % ALIGN);
  const total = hlen + padlen;
  if (total > 0xffff) throw new Error(`npy header too long for format 1.0 (shape [${shape.join(', ')}])`);
  const out = Buffer.alloc(prefix + total, 0x20);
  MAGIC.copy(out, 0);
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(total, 8);
  out.write(dict, prefix, 'latin1');
  out[out.length - 1] = 0x0a;
  return out;
}

/** The data bytes in little-endian order (a copy only on big-endian hosts). */
function littleEndianBytes(data: NpyData, itemsize: number): Buffer {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (LITTLE_ENDIAN_HOST || itemsize === 1) return bytes;
  return swapBytes(bytes, itemsize);
}

function swapBytes(bytes: Uint8Array, itemsize: number): Buffer {
  const out = Buffer.allocUnsafe(bytes.length);
  for (let i = 0; i < bytes.length; i += itemsize) {
    for (let k = 0; k < itemsize; k++) out[i + k] = bytes[i + itemsize - 1 - k];
  }
  return out;
}

export type NpyData = NpyDataOf[NpyDtype];

/** The dtype a typed array is written as. */
export function dtypeOf(data: NpyData): NpyDtype {
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint8Array) return 'uint8';
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  throw new Error('npy data must be a BigInt64Array, Int32Array, Uint8Array, Float32Array or Float64Array');
}

/** A whole .npy file in memory; `shape` defaults to one axis of data.length (C order). */
export function encodeNpy(data: NpyData, shape: number[] = [data.length]): Buffer {
  const dtype = dtypeOf(data);
  checkShape(shape, data.length);
  return Buffer.concat([npyHeader(dtype, shape), littleEndianBytes(data, ITEMSIZE[dtype])]);
}

/** Writes `file` whole or not at all; the dtype follows the typed array (BigInt64Array is int64). */
export function writeNpy(file: string, data: NpyData, shape: number[] = [data.length]): void {
  const dtype = dtypeOf(data);
  checkShape(shape, data.length);
  const header = npyHeader(dtype, shape);
  const body = littleEndianBytes(data, ITEMSIZE[dtype]);
  writeFileAtomic(file, Buffer.concat([header, body]));
}

/**
 * A header excerpt for a one-line error: a damaged header can be megabytes of anything, so
 * control and non-ASCII characters show as '?' and the excerpt stops after 80 characters.
 */
function printable(text: string, max = 80): string {
  const t = text.trim().replace(/[^\x20-\x7e]/g, '?');
  return t.length > max ? `${t.slice(0, max)}…` : t;
}
const excerpt = (text: string, max?: number): string => `"${printable(text, max)}"`;

type HeaderValue = string | boolean | number[];

/**
 * The header dict numpy writes, a Python literal such as
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. Parsed strictly: only what
 * numpy's own reader (ast.literal_eval, then a check of the three keys) would accept, so that
 * whatever we read, numpy reads the same way.
 */
function parseHeaderDict(text: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  let i = 0;
  const fail = (what: string): never => {
    throw new UserError(`unreadable header (${what} at character ${i}): ${excerpt(text)}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\r\n\f'.includes(text[i])) i++;
  };
  const eat = (c: string): boolean => {
    ws();
    if (text[i] !== c) return false;
    i++;
    return true;
  };
  const str = (): string => {
    ws();
    const q = text[i];
    if (q !== "'" && q !== '"') fail('expected a quoted string');
    const end = text.indexOf(q, i + 1);
    if (end < 0) fail('unterminated string');
    const v = text.slice(i + 1, end);
    // escapes and line breaks would need Python's string rules; numpy never writes them
    if (/[\\\n\r]/.test(v)) fail('unsupported string');
    i = end + 1;
    return v;
  };
  const int = (): number => {
    ws();
    const m = /^(0|[1-9][0-9]*)L?/.exec(text.slice(i, i + 40));
    if (!m) fail('expected a non-negative integer');
    i += m![0].length;
    const n = Number(m![1]);
    if (!Number.isSafeInteger(n)) fail(`shape entry ${m![1]} is too large`);
    return n;
  };
  const value = (): HeaderValue => {
    ws();
    if (text.startsWith('True', i)) { i += 4; return true; }
    if (text.startsWith('False', i)) { i += 5; return false; }
    if (text[i] === "'" || text[i] === '"') return str();
    if (!eat('(')) fail('expected a string, True, False or a tuple');
    // Python's tuples: () and (3,) and (3, 4) and (3, 4,); (3) is not a tuple
    const dims: number[] = [];
    if (eat(')')) return dims;
    for (;;) {
      dims.push(int());
      const comma = eat(',');
      if (eat(')')) {
        if (dims.length === 1 && !comma) fail('(n) is not a tuple');
        return dims;
      }
      if (!comma) fail("expected ',' or ')'");
    }
  };
  if (text[0] !== '{') fail("expected '{'");
  i = 1;
  const dict = new Map<string, HeaderValue>();
  if (!eat('}')) {
    for (;;) {
      const key = str();
      if (!eat(':')) fail("expected ':'");
      dict.set(key, value());
      const comma = eat(',');
      if (eat('}')) break;
      if (!comma) fail("expected ',' or '}'");
    }
  }
  ws();
  if (i !== text.length) fail('unexpected text after the dict');
  const keys = Array.from(dict.keys()).sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') {
    throw new UserError(`header keys are ${keys ? excerpt(keys, 60) : 'none'}, expected descr, fortran_order, shape`);
  }
  const descr = dict.get('descr');
  const fortranOrder = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof descr !== 'string' || typeof fortranOrder !== 'boolean' || !Array.isArray(shape)) {
    throw new UserError(`header has ill-typed descr, fortran_order or shape: ${excerpt(text)}`);
  }
  return { descr, fortranOrder, shape };
}

/**
 * Throws a UserError saying what is wrong (readNpy adds the file name), and nothing else whatever
 * the bytes: the data size the header claims is checked against the bytes present before anything
 * is allocated for it.
 */
export function decodeNpy(bytes: Uint8Array): NpyArray {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC)) throw new UserError('not a .npy file (no \\x93NUMPY magic)');
  const major = buf[6];
  // numpy knows 1.0, 2.0 and 3.0 only; another minor version is not a file it wrote
  if (buf[7] !== 0) throw new UserError(`unsupported .npy format version ${major}.${buf[7]}`);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw new UserError('truncated .npy header');
    headerLen = buf.readUInt32LE(8);
    headerStart = 12;
  } else {
    throw new UserError(`unsupported .npy format version ${major}.${buf[7]}`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > buf.length) throw new UserError('truncated .npy header');
  const text = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, dataStart);
  const { descr, fortranOrder, shape } = parseHeaderDict(text);
  const dtype = FROM_DESCR.get(descr);
  if (!dtype) {
    throw new UserError(
      `unsupported dtype '${printable(descr, 20)}' (supported: ${Object.values(DESCR).join(', ')}; ` +
        `convert with numpy's astype, little-endian)`,
    );
  }
  if (fortranOrder) throw new UserError('Fortran-order arrays are not supported (save numpy.ascontiguousarray(a) instead)');
  // an empty axis makes any product empty (Infinity * 0 would say NaN)
  const count = shape.includes(0) ? 0 : shape.reduce((a, b) => a * b, 1);
  const itemsize = ITEMSIZE[dtype];
  const expected = count * itemsize;
  const have = buf.length - dataStart;
  if (have !== expected) {
    throw new UserError(
      `${have < expected ? 'truncated' : 'trailing bytes'}: shape (${shape.join(', ')}) of ${descr} needs ` +
        `${expected} data bytes, the file has ${have}`,
    );
  }
  // copy: the data offset need not be aligned for the typed array, and callers keep the result
  let raw = buf.subarray(dataStart);
  if (!LITTLE_ENDIAN_HOST && itemsize > 1) raw = swapBytes(raw, itemsize);
  const ab = new ArrayBuffer(expected);
  new Uint8Array(ab).set(raw);
  switch (dtype) {
    case 'int64': return { dtype, shape, data: new BigInt64Array(ab) };
    case 'int32': return { dtype, shape, data: new Int32Array(ab) };
    case 'uint8': return { dtype, shape, data: new Uint8Array(ab) };
    case 'float32': return { dtype, shape, data: new Float32Array(ab) };
    case 'float64': return { dtype, shape, data: new Float64Array(ab) };
  }
}

export function readNpy(file: string): NpyArray {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code}`);
  }
  try {
    return decodeNpy(bytes);
  } catch (e) {
    throw new UserError(`${file}: ${(e as Error).message}`);
  }
}
