import * as protobuf from 'protobufjs';
import { UserError } from '../errors';

/**
 * tf.train.Example, the record payload of every dataset file, with the two features the originals
 * write: `image` (bytes_list holding one PNG) and `label` (int64_list holding one class index).
 *
 * The message types are declared here rather than loaded from a .proto file so that nothing has to
 * be found on disk at run time; field numbers and packing follow tensorflow/core/example/feature.proto.
 */
// (IField's typings lack keyType; fromJSON reads it and builds a map field)
const root = protobuf.Root.fromJSON({
  nested: {
    tensorflow: {
      nested: {
        Example: { fields: { features: { type: 'Features', id: 1 } } },
        Features: { fields: { feature: { keyType: 'string', type: 'Feature', id: 1 } } },
        Feature: {
          oneofs: { kind: { oneof: ['bytesList', 'floatList', 'int64List'] } },
          fields: {
            bytesList: { type: 'BytesList', id: 1 },
            floatList: { type: 'FloatList', id: 2 },
            int64List: { type: 'Int64List', id: 3 },
          },
        },
        BytesList: { fields: { value: { rule: 'repeated', type: 'bytes', id: 1 } } },
        FloatList: { fields: { value: { rule: 'repeated', type: 'float', id: 1, options: { packed: true } } } },
        Int64List: { fields: { value: { rule: 'repeated', type: 'int64', id: 1, options: { packed: true } } } },
      },
    },
  },
} as protobuf.INamespace);

const ExampleType = root.lookupType('tensorflow.Example');

interface FeatureMsg {
  bytesList?: { value?: Uint8Array[] };
  floatList?: { value?: number[] };
  int64List?: { value?: Array<number | protobuf.Long> };
}
interface ExampleMsg {
  features?: { feature?: Record<string, FeatureMsg> };
}

export interface ImageExample {
  image: Uint8Array;
  label: number;
}

export function encodeImageExample(image: Uint8Array, label: number): Uint8Array {
  if (!Number.isSafeInteger(label)) throw new Error(`label must be an integer, got ${label}`);
  // Keys in sorted order, as TensorFlow's deterministic serialization writes map entries.
  const msg: ExampleMsg = {
    features: {
      feature: {
        image: { bytesList: { value: [image] } },
        label: { int64List: { value: [label] } },
      },
    },
  };
  return ExampleType.encode(ExampleType.fromObject(msg)).finish();
}

function int64ToNumber(v: number | protobuf.Long): number {
  // high is the signed upper word; anything past 2^53 cannot come out as a safe integer
  const n = typeof v === 'number' ? v : v.high * 4294967296 + (v.low >>> 0);
  if (!Number.isSafeInteger(n)) throw new UserError(`int64 label ${n} is out of range`);
  return n;
}

const own = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

function featureKinds(f: FeatureMsg): string {
  if (f.bytesList) return 'bytes_list';
  if (f.floatList) return 'float_list';
  if (f.int64List) return 'int64_list';
  return 'empty';
}

/**
 * Throws a UserError saying what is wrong on a malformed message or a missing/ill-typed feature;
 * callers know the file and record index and add them. Never anything else, whatever the bytes:
 * lengths are checked against the input before anything is allocated.
 */
export function decodeImageExample(bytes: Uint8Array): ImageExample {
  let msg: ExampleMsg;
  try {
    msg = ExampleType.decode(bytes) as unknown as ExampleMsg;
  } catch (e) {
    throw new UserError(`not a valid tf.train.Example (${(e as Error)?.message ?? String(e)})`);
  }
  const features = msg.features?.feature ?? {};
  const keys = Object.keys(features).sort();
  // own properties only: a map key such as __proto__ must not find something inherited
  const missing = ['image', 'label'].filter((k) => !own(features, k));
  if (missing.length > 0) {
    throw new UserError(
      `tf.train.Example lacks feature ${missing.map((k) => `'${k}'`).join(' and ')} ` +
        `(has: ${keys.length ? keys.join(', ') : 'no features'})`,
    );
  }
  const img = features.image;
  const images = img.bytesList?.value ?? [];
  if (!img.bytesList || images.length !== 1) {
    throw new UserError(
      `feature 'image' must be a bytes_list with one value, got ${featureKinds(img)}` +
        (img.bytesList ? ` with ${images.length} values` : ''),
    );
  }
  const lab = features.label;
  const labels = lab.int64List?.value ?? [];
  if (!lab.int64List || labels.length !== 1) {
    throw new UserError(
      `feature 'label' must be an int64_list with one value, got ${featureKinds(lab)}` +
        (lab.int64List ? ` with ${labels.length} values` : ''),
    );
  }
  return { image: images[0], label: int64ToNumber(labels[0]) };
}

// ---------------------------------------------------------------------------------------------
// decodeLabel: a direct walk over the wire format. Scanning labels of 100k+ records must not pay
// for copying every image out of its record, which a full decode does.

class Cursor {
  pos: number;
  constructor(readonly buf: Uint8Array, start: number, readonly end: number) {
    this.pos = start;
  }

  /**
   * A varint read as int64: exact up to 2^49 in plain arithmetic; longer ones go through BigInt so
   * that negative values (ten bytes of two's complement) come out signed.
   */
  varint(): number {
    const { buf } = this;
    let result = 0;
    let mul = 1;
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const b = buf[this.pos++];
      if (i < 7) {
        result += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) return result;
      } else if (b < 0x80) {
        return this.bigVarint(start);
      }
    }
    throw new Error('varint longer than 10 bytes');
  }

  private bigVarint(start: number): number {
    let v = 0n;
    let shift = 0n;
    for (let p = start; p < this.pos; p++) {
      v |= BigInt(this.buf[p] & 0x7f) << shift;
      shift += 7n;
    }
    const signed = BigInt.asIntN(64, v);
    if (signed > BigInt(Number.MAX_SAFE_INTEGER) || signed < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new Error(`int64 value ${signed} is out of range`);
    }
    return Number(signed);
  }

  /** Returns the [start, end) of a length-delimited field's payload and moves past it. */
  lengthDelimited(): [number, number] {
    const at = this.pos;
    const len = this.varint();
    const start = this.pos;
    // a negative length (a ten-byte varint) would walk backwards forever
    if (len < 0) throw new Error(`negative field length ${len} at byte ${at}`);
    if (start + len > this.end) throw new Error(`truncated length-delimited field at byte ${at}`);
    this.pos = start + len;
    return [start, start + len];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0: this.varint(); return;
      case 1: this.pos += 8; break;
      case 2: this.lengthDelimited(); return;
      case 5: this.pos += 4; break;
      default: throw new Error(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new Error('truncated fixed-width field');
  }
}

const LABEL_KEY = [0x6c, 0x61, 0x62, 0x65, 0x6c]; // "label"

function isLabelKey(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start !== LABEL_KEY.length) return false;
  for (let i = 0; i < LABEL_KEY.length; i++) if (buf[start + i] !== LABEL_KEY[i]) return false;
  return true;
}

/** Values of an Int64List, packed or not (parsers must accept both). */
function readInt64List(buf: Uint8Array, start: number, end: number, out: number[]): void {
  const c = new Cursor(buf, start, end);
  while (c.pos < end) {
    const tag = c.varint();
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 1 && wt === 2) {
      const [s, e] = c.lengthDelimited();
      const p = new Cursor(buf, s, e);
      while (p.pos < e) out.push(p.varint());
    } else if (field === 1 && wt === 0) {
      out.push(c.varint());
    } else {
      c.skip(wt);
    }
  }
}

/** The `label` of a serialized tf.train.Example, without decoding the image. Same errors as decodeImageExample. */
export function decodeLabel(bytes: Uint8Array): number {
  let values: number[] | null = null;
  let kind = 'empty';
  try {
    const top = new Cursor(bytes, 0, bytes.length);
    while (top.pos < bytes.length) {
      const tag = top.varint();
      if (tag !== ((1 << 3) | 2)) { top.skip(tag & 7); continue; }
      const [fs, fe] = top.lengthDelimited();
      const feats = new Cursor(bytes, fs, fe);
      while (feats.pos < fe) {
        const ftag = feats.varint();
        if (ftag !== ((1 << 3) | 2)) { feats.skip(ftag & 7); continue; }
        const [es, ee] = feats.lengthDelimited();
        const entry = new Cursor(bytes, es, ee);
        let isLabel = false;
        let val: [number, number] | null = null;
        while (entry.pos < ee) {
          const etag = entry.varint();
          if (etag === ((1 << 3) | 2)) {
            const [ks, ke] = entry.lengthDelimited();
            isLabel = isLabelKey(bytes, ks, ke);
          } else if (etag === ((2 << 3) | 2)) {
            val = entry.lengthDelimited();
          } else {
            entry.skip(etag & 7);
          }
        }
        if (!isLabel) continue;
        // a repeated map key replaces the earlier entry, as in every protobuf parser
        values = [];
        kind = 'empty';
        if (!val) continue;
        const feat = new Cursor(bytes, val[0], val[1]);
        while (feat.pos < val[1]) {
          const t = feat.varint();
          const field = Math.floor(t / 8);
          if ((t & 7) === 2 && field >= 1 && field <= 3) {
            const [ls, le] = feat.lengthDelimited();
            if (field === 3) {
              // oneof members of message type merge when repeated; a switch of member resets
              if (kind !== 'int64_list') values = [];
              kind = 'int64_list';
              readInt64List(bytes, ls, le, values);
            } else {
              kind = field === 1 ? 'bytes_list' : 'float_list';
              values = [];
            }
          } else {
            feat.skip(t & 7);
          }
        }
      }
    }
  } catch (e) {
    throw new UserError(`not a valid tf.train.Example (${(e as Error).message})`);
  }
  if (values === null) throw new UserError(`tf.train.Example lacks feature 'label'`);
  if (kind !== 'int64_list' || values.length !== 1) {
    throw new UserError(
      `feature 'label' must be an int64_list with one value, got ${kind}` +
        (kind === 'int64_list' ? ` with ${values.length} values` : ''),
    );
  }
  return values[0];
}
