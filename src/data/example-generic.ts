/**
 * tf.train.Example with any features, not just the `image`/`label` pair of ./example.ts: what
 * `inspect` needs to describe a file written by some other TensorFlow program, and what the
 * interoperability tests use to read TensorFlow's own files.
 *
 * A direct walk over the protobuf wire format (tensorflow/core/example/{example,feature}.proto):
 *   Example  { Features features = 1; }
 *   Features { map<string, Feature> feature = 1; }       map entry: key = 1, value = 2
 *   Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
 *   *List    { repeated <type> value = 1; }              floats and int64s packed or not
 * Parsing follows protobuf's rules where a writer may differ: a repeated map key keeps the last
 * entry, repeated oneof members of the same kind merge, a switch of member replaces.
 */

import { concatArrays } from '../util/typed-arrays';

export type FeatureKind = 'bytes_list' | 'float_list' | 'int64_list';

export type Feature =
  | { kind: 'bytes_list'; values: Uint8Array[] }
  | { kind: 'float_list'; values: number[] }
  /** int64 values as numbers when they are safe integers, else as bigint. */
  | { kind: 'int64_list'; values: Array<number | bigint> }
  /** A Feature message with no member set (TensorFlow parses it as an empty list). */
  | { kind: 'empty'; values: [] };

export type FeatureMap = Record<string, Feature>;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }

  done(): boolean {
    return this.pos >= this.end;
  }

  /** Unsigned 64-bit varint, exact, as a bigint. */
  varintBig(): bigint {
    let v = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asUintN(64, v);
      shift += 7n;
    }
    throw new Error('varint longer than 10 bytes');
  }

  /** A varint that must fit a JavaScript number (tags and lengths). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = this.buf[this.pos++];
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new Error('varint too large for a tag or length');
  }

  int64(): number | bigint {
    const v = BigInt.asIntN(64, this.varintBig());
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  bytes(): Uint8Array {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new Error('truncated length-delimited field');
    this.pos = start + len;
    return this.buf.subarray(start, start + len);
  }

  /** A reader over the payload of a length-delimited field. */
  sub(): Reader {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new Error('truncated length-delimited field');
    this.pos = start + len;
    return new Reader(this.buf, start, start + len);
  }

  float32(): number {
    if (this.pos + 4 > this.end) throw new Error('truncated float');
    const v = new DataView(this.buf.buffer, this.buf.byteOffset + this.pos, 4).getFloat32(0, true);
    this.pos += 4;
    return v;
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varintBig();
        return;
      case WIRE_FIXED64:
        this.pos += 8;
        break;
      case WIRE_LEN:
        this.bytes();
        return;
      case WIRE_FIXED32:
        this.pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wire}`);
    }
    if (this.pos > this.end) throw new Error('truncated fixed-width field');
  }
}

function readList(r: Reader, kind: FeatureKind, into: unknown[]): void {
  while (!r.done()) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field !== 1) {
      r.skip(wire);
      continue;
    }
    if (kind === 'bytes_list' && wire === WIRE_LEN) {
      into.push(r.bytes());
    } else if (kind === 'float_list' && wire === WIRE_FIXED32) {
      into.push(r.float32());
    } else if (kind === 'float_list' && wire === WIRE_LEN) {
      const p = r.sub();
      while (!p.done()) into.push(p.float32());
    } else if (kind === 'int64_list' && wire === WIRE_VARINT) {
      into.push(r.int64());
    } else if (kind === 'int64_list' && wire === WIRE_LEN) {
      const p = r.sub();
      while (!p.done()) into.push(p.int64());
    } else {
      throw new Error(`${kind} value has wire type ${wire}`);
    }
  }
}

const KINDS: Record<number, FeatureKind> = { 1: 'bytes_list', 2: 'float_list', 3: 'int64_list' };

function readFeature(r: Reader): Feature {
  let feature: Feature = { kind: 'empty', values: [] };
  while (!r.done()) {
    const tag = r.varint();
    const kind = KINDS[Math.floor(tag / 8)];
    if (!kind || (tag & 7) !== WIRE_LEN) {
      r.skip(tag & 7);
      continue;
    }
    if (feature.kind !== kind) feature = { kind, values: [] } as Feature;
    readList(r.sub(), kind, feature.values as unknown[]);
  }
  return feature;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Every feature of a serialized tf.train.Example. Bytes values are views into `bytes` (copy them
 * to keep them past the buffer's life). Throws a plain Error on a malformed message; callers add
 * the file and record.
 */
export function decodeExampleFeatures(bytes: Uint8Array): FeatureMap {
  // no prototype: a feature named __proto__ or constructor is just a key
  const out: FeatureMap = Object.create(null);
  try {
    const top = new Reader(bytes, 0, bytes.length);
    while (!top.done()) {
      const tag = top.varint();
      if (tag !== ((1 << 3) | WIRE_LEN)) {
        top.skip(tag & 7);
        continue;
      }
      const features = top.sub();
      while (!features.done()) {
        const ftag = features.varint();
        if (ftag !== ((1 << 3) | WIRE_LEN)) {
          features.skip(ftag & 7);
          continue;
        }
        const entry = features.sub();
        let key = '';
        let value: Feature = { kind: 'empty', values: [] };
        while (!entry.done()) {
          const etag = entry.varint();
          if (etag === ((1 << 3) | WIRE_LEN)) key = utf8.decode(entry.bytes());
          else if (etag === ((2 << 3) | WIRE_LEN)) value = readFeature(entry.sub());
          else entry.skip(etag & 7);
        }
        out[key] = value;
      }
    }
  } catch (e) {
    throw new Error(`not a valid tf.train.Example (${(e as Error).message})`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Encoding, for writing examples with arbitrary features (tests, tools).

function varintBytes(v: bigint): number[] {
  const out: number[] = [];
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}

function lenField(field: number, payload: Uint8Array): Uint8Array {
  const head = [...varintBytes(BigInt((field << 3) | WIRE_LEN)), ...varintBytes(BigInt(payload.length))];
  const out = new Uint8Array(head.length + payload.length);
  out.set(head, 0);
  out.set(payload, head.length);
  return out;
}

function encodeFeature(f: Feature): Uint8Array {
  switch (f.kind) {
    case 'empty':
      return new Uint8Array(0);
    case 'bytes_list':
      return lenField(1, concatArrays(Uint8Array, f.values.map((v) => lenField(1, v))));
    case 'float_list': {
      const packed = new Uint8Array(4 * f.values.length);
      const dv = new DataView(packed.buffer);
      f.values.forEach((v, i) => dv.setFloat32(4 * i, v, true));
      return lenField(2, f.values.length ? lenField(1, packed) : packed);
    }
    case 'int64_list': {
      const packed = Uint8Array.from(f.values.flatMap((v) => varintBytes(BigInt(v))));
      return lenField(3, f.values.length ? lenField(1, packed) : packed);
    }
  }
}

/**
 * Serializes features as TensorFlow's deterministic serialization does: map entries sorted by key,
 * numeric lists packed, empty lists written as empty messages.
 */
export function encodeExampleFeatures(features: FeatureMap): Uint8Array {
  const enc = new TextEncoder();
  const entries = Object.keys(features)
    .sort()
    .map((k) => lenField(1, concatArrays(Uint8Array, [lenField(1, enc.encode(k)), lenField(2, encodeFeature(features[k]))])));
  return lenField(1, concatArrays(Uint8Array, entries));
}

/** A one-line description of a feature, e.g. `int64_list[1] = 7` or `bytes_list[1] (2,345 bytes)`. */
export function describeFeature(f: Feature): string {
  const n = f.values.length;
  if (f.kind === 'empty') return 'empty';
  if (f.kind === 'bytes_list') {
    const sizes = f.values.map((v) => v.length);
    return `${f.kind}[${n}]` + (n === 1 ? ` (${sizes[0]} bytes)` : n > 1 ? ` (${sizes.reduce((a, b) => a + b, 0)} bytes)` : '');
  }
  const shown = f.values.slice(0, 4).map((v) => (f.kind === 'float_list' ? float32String(v as number) : String(v)));
  return `${f.kind}[${n}]` + (n > 0 ? ` = ${shown.join(', ')}${n > 4 ? ', ...' : ''}` : '');
}

/** The shortest decimal that reads back as the same float32 (3.14, not 3.140000104904175). */
export function float32String(v: number): string {
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  for (let p = 1; p < 9; p++) {
    const s = String(Number(v.toPrecision(p)));
    if (Math.fround(Number(s)) === Math.fround(v)) return s;
  }
  return String(Math.fround(v));
}
