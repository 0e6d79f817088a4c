import * as zlib from 'zlib';
import { RandomState } from '../random';
import type { Augmentation } from './augment-base';
import { decodeImageExample, encodeImageExample } from './example';
import { decodeImage, DecodedImage, encodePngSync } from './png';

/**
 * One aug-copy record: tf.train.Example in, tf.train.Example out, the image decoded, augmented with
 * its own seed and re-encoded as PNG, the label kept. Runs in worker threads or in-thread alike.
 *
 * Decoding goes through a small in-process PNG reader for what datasets hold (8-bit, not
 * interlaced, grey/grey+alpha/RGB/RGBA): sharp's per-call cost is several times the work on a
 * 32×32 image. Anything else (palette, 16-bit, interlaced, transparency chunks, JPEG) goes to sharp.
 */

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** The pixels of a plain 8-bit PNG, or null when it needs the general decoder. Throws on corrupt data. */
export function decodePngFast(bytes: Uint8Array): DecodedImage | null {
  if (bytes.length < 8 || SIGNATURE.some((v, i) => bytes[i] !== v)) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Uint8Array[] = [];
  while (pos + 8 <= bytes.length) {
    const len = view.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    const data = bytes.subarray(pos + 8, pos + 8 + len);
    if (data.length !== len) throw new Error('truncated PNG chunk');
    if (type === 'IHDR') {
      width = view.getUint32(pos + 8);
      height = view.getUint32(pos + 12);
      const depth = data[8];
      const colourType = data[9];
      const interlace = data[12];
      if (depth !== 8 || interlace !== 0 || !(colourType in CHANNELS)) return null;
      channels = CHANNELS[colourType];
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'tRNS' || type === 'PLTE') {
      return null;
    } else if (type === 'IEND') {
      break;
    }
    pos += 12 + len;
  }
  if (channels === 0 || width === 0 || height === 0) throw new Error('PNG without a valid IHDR');
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new Error('PNG image data is too short');
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const r = y * (stride + 1) + 1;
    const o = y * stride;
    const u = o - stride; // the row above (only read when y > 0)
    const c = channels;
    // one loop per filter: a switch per byte costs more than the arithmetic
    if (filter === 0) {
      for (let i = 0; i < stride; i++) out[o + i] = raw[r + i];
    } else if (filter === 1) {
      for (let i = 0; i < c; i++) out[o + i] = raw[r + i];
      for (let i = c; i < stride; i++) out[o + i] = (raw[r + i] + out[o + i - c]) & 0xff;
    } else if (filter === 2) {
      if (y === 0) for (let i = 0; i < stride; i++) out[o + i] = raw[r + i];
      else for (let i = 0; i < stride; i++) out[o + i] = (raw[r + i] + out[u + i]) & 0xff;
    } else if (filter === 3) {
      for (let i = 0; i < stride; i++) {
        const a = i >= c ? out[o + i - c] : 0;
        const b = y > 0 ? out[u + i] : 0;
        out[o + i] = (raw[r + i] + ((a + b) >> 1)) & 0xff;
      }
    } else if (filter === 4) {
      for (let i = 0; i < stride; i++) {
        const a = i >= c ? out[o + i - c] : 0;
        const b = y > 0 ? out[u + i] : 0;
        const d = i >= c && y > 0 ? out[u + i - c] : 0;
        out[o + i] = (raw[r + i] + paeth(a, b, d)) & 0xff;
      }
    } else {
      throw new Error(`bad PNG row filter ${filter}`);
    }
  }
  return { data: out, height, width, channels };
}

export async function decodeAnyImage(bytes: Uint8Array): Promise<DecodedImage> {
  return decodePngFast(bytes) ?? (await decodeImage(bytes));
}

/** Record `record` augmented with a generator seeded by `seed`, as a new serialized Example. */
export async function augmentRecord(record: Uint8Array, augment: Augmentation, seed: number): Promise<Uint8Array> {
  const ex = decodeImageExample(record);
  const img = await decodeAnyImage(ex.image);
  const shape = { height: img.height, width: img.width, channels: img.channels };
  const out = new Uint8Array(img.data.length);
  augment.applyU8(img.data, 0, out, 0, shape, new RandomState(seed));
  if (img.channels === 2) {
    throw new Error('grey+alpha images cannot be written back as PNG here; convert the dataset to grey or RGB');
  }
  return encodeImageExample(encodePngSync(out, img.height, img.width, img.channels), ex.label);
}

/** A run of records for one worker: source records packed in one buffer, one seed each. */
export interface AugCopyTask {
  augment: string;
  buffer: ArrayBuffer;
  lengths: number[];
  /** Per record: the augmentation seed, or -1 to pass the record through unchanged (--keep-original). */
  seeds: number[];
}

export interface AugCopyReply {
  buffer: ArrayBuffer;
  lengths: number[];
  /** The first record of the run that could not be processed, by its place in the run. */
  failed?: { index: number; message: string };
}

export function packRecords(records: Uint8Array[]): { buffer: ArrayBuffer; lengths: number[] } {
  const lengths = records.map((r) => r.length);
  const out = new Uint8Array(lengths.reduce((a, b) => a + b, 0));
  let o = 0;
  for (const r of records) {
    out.set(r, o);
    o += r.length;
  }
  return { buffer: out.buffer, lengths };
}

export function unpackRecords(buffer: ArrayBuffer, lengths: number[]): Uint8Array[] {
  const all = new Uint8Array(buffer);
  const out: Uint8Array[] = [];
  let o = 0;
  for (const n of lengths) {
    out.push(all.subarray(o, o + n));
    o += n;
  }
  return out;
}

/** Does a task; `getAugment` lets a worker build each named augmentation once. */
export async function runAugCopyTask(task: AugCopyTask, getAugment: (name: string) => Augmentation): Promise<AugCopyReply> {
  const augment = getAugment(task.augment);
  const records = unpackRecords(task.buffer, task.lengths);
  const out: Uint8Array[] = [];
  for (let i = 0; i < records.length; i++) {
    try {
      out.push(task.seeds[i] < 0 ? records[i] : await augmentRecord(records[i], augment, task.seeds[i]));
    } catch (e) {
      return { ...packRecords([]), failed: { index: i, message: (e as Error).message } };
    }
  }
  return packRecords(out);
}
