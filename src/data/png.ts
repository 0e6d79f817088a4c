import * as zlib from 'zlib';
import sharp from 'sharp';
import { UserError } from '../errors';

/**
 * PNG encoding and PNG/JPEG decoding on interleaved H×W×C uint8 pixels, the layout TensorFlow's
 * encode_png/decode_image use. sharp (libvips) does the general work; encodePngSync is a small
 * in-process encoder for dataset builders, where sharp's per-call cost (about 0.9 ms of CPU for a
 * 28×28 digit, against 0.13 ms here) dominates building tens of thousands of tiny images.
 */

export interface DecodedImage {
  data: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

function checkDims(height: number, width: number): void {
  for (const [name, v] of [['height', height], ['width', width]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`image ${name} must be a positive integer, got ${v}`);
  }
}

function checkEncodeArgs(pixels: Uint8Array, height: number, width: number, channels: number): void {
  checkDims(height, width);
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new Error(`PNG encoding takes 1, 3 or 4 channels, got ${channels}`);
  }
  if (pixels.length !== height * width * channels) {
    throw new Error(`expected ${height}x${width}x${channels} = ${height * width * channels} pixel values, got ${pixels.length}`);
  }
}

export async function encodePng(pixels: Uint8Array, height: number, width: number, channels: number): Promise<Buffer> {
  checkEncodeArgs(pixels, height, width, channels);
  const input = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  let img = sharp(input, { raw: { width, height, channels: channels as 1 | 3 | 4 } });
  // Without this libvips treats one band as sRGB and writes an RGB PNG; TensorFlow writes (and
  // decode_image gives back) a one-channel grayscale PNG.
  if (channels === 1) img = img.toColourspace('b-w');
  return img.png().toBuffer();
}

/**
 * Images larger than this many pixels are refused before any pixel memory is allocated (the
 * header is read first): a dataset record that claims more is damage, not data. The figure is
 * sharp's own default, pinned here so that an upgrade cannot change what we accept.
 */
export const MAX_IMAGE_PIXELS = 0x3fff * 0x3fff;

/**
 * sharp settings for untrusted bytes: the pixel limit above, and stop at the first warning, so
 * that a truncated or damaged stream fails at once instead of decoding to grey filler.
 */
const DECODE_OPTIONS = { limitInputPixels: MAX_IMAGE_PIXELS, failOn: 'warning' } as const;

/**
 * The most decoded bytes one byte of image data can stand for: deflate's ratio (1032:1) times a
 * 1-bit palette PNG's 32 output bytes per packed byte, rounded up; JPEG and GIF stay well below.
 * A header that declares more pixels than its data could ever hold is damage, and is refused
 * before libvips allocates (and touches) a buffer that big.
 */
export const MAX_EXPANSION = 1 << 16;

/** Decoded bytes an image of `inputBytes` may declare. */
export function maxDecodedBytes(inputBytes: number): number {
  return inputBytes * MAX_EXPANSION + (1 << 20);
}
const DECODABLE = new Set(['png', 'jpeg', 'gif']);

/**
 * Decodes PNG or JPEG (what tf.image.decode_image reads in the originals) to uint8, keeping the
 * stored channel count: grayscale stays 1 channel, grayscale+alpha 2, as TensorFlow returns them.
 * 16-bit PNGs are scaled to 8 bits. Throws a UserError on anything undecodable, and nothing else
 * whatever the bytes; callers add which file or record it was.
 */
export async function decodeImage(bytes: Uint8Array): Promise<DecodedImage> {
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  try {
    const meta = await sharp(input, DECODE_OPTIONS).metadata();
    // what tf.image.decode_image reads (and libvips can); svg, pdf, tiff and the rest stay out
    if (!DECODABLE.has(String(meta.format))) throw new Error(`${meta.format ?? 'unknown'} data`);
    const stored = meta.channels ?? 3;
    const declared = (meta.width ?? 0) * (meta.height ?? 0) * Math.max(stored, 1);
    if (declared > maxDecodedBytes(input.length)) {
      throw new Error(`the header declares ${meta.width}x${meta.height} pixels, more than ${input.length} bytes of ${meta.format} data can hold (a damaged header)`);
    }
    let img = sharp(input, DECODE_OPTIONS);
    // libvips would hand grayscale back as RGB; b-w keeps one band (it drops alpha, handled below)
    if (stored === 1) img = img.toColourspace('b-w');
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    let out = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let channels = info.channels;
    if (stored === 2 && channels === 4) {
      // gray+alpha comes back as RGBA with R = G = B = gray: keep gray and alpha
      const n = info.width * info.height;
      const ga = new Uint8Array(n * 2);
      for (let i = 0; i < n; i++) {
        ga[2 * i] = out[4 * i];
        ga[2 * i + 1] = out[4 * i + 3];
      }
      out = ga;
      channels = 2;
    }
    if (out.length !== info.width * info.height * channels) throw new Error(`decoder returned ${out.length} bytes for ${info.width}x${info.height}x${channels}`);
    return { data: out, height: info.height, width: info.width, channels };
  } catch (e) {
    const why = String((e as Error)?.message ?? e).split('\n')[0].trim();
    throw new UserError(`cannot decode image: ${why} (expected PNG or JPEG data)`);
  }
}

// ---------------------------------------------------------------------------------------------
// encodePngSync

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO-HDLC), as PNG chunks use; not the Castagnoli CRC of TFRecord framing. */
function crc32(buf: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out, 4, 8 + data.length), 8 + data.length);
  return out;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const COLOUR_TYPE: Record<number, number> = { 1: 0, 3: 2, 4: 6 }; // gray, RGB, RGBA

/*
 * The five PNG row filters. Each writes the filtered bytes of `row` into `o` and returns libpng's
 * cost for them (sum of the bytes read as signed), stopping early once the cost reaches `limit`,
 * since that filter can no longer win. One small function per filter keeps each loop tight.
 */
type RowFilter = (row: Uint8Array, up: Uint8Array, bpp: number, o: Uint8Array, limit: number) => number;

const cost = (v: number): number => (v < 128 ? v : 256 - v);

const FILTERS: RowFilter[] = [
  (row, _up, _bpp, o, limit) => {
    let sum = 0;
    for (let i = 0; i < row.length; i++) {
      o[i] = row[i];
      sum += cost(row[i]);
      if (sum >= limit) return sum;
    }
    return sum;
  },
  (row, _up, bpp, o, limit) => {
    let sum = 0;
    for (let i = 0; i < row.length; i++) {
      const v = (row[i] - (i >= bpp ? row[i - bpp] : 0)) & 0xff;
      o[i] = v;
      sum += cost(v);
      if (sum >= limit) return sum;
    }
    return sum;
  },
  (row, up, _bpp, o, limit) => {
    let sum = 0;
    for (let i = 0; i < row.length; i++) {
      const v = (row[i] - up[i]) & 0xff;
      o[i] = v;
      sum += cost(v);
      if (sum >= limit) return sum;
    }
    return sum;
  },
  (row, up, bpp, o, limit) => {
    let sum = 0;
    for (let i = 0; i < row.length; i++) {
      const v = (row[i] - (((i >= bpp ? row[i - bpp] : 0) + up[i]) >> 1)) & 0xff;
      o[i] = v;
      sum += cost(v);
      if (sum >= limit) return sum;
    }
    return sum;
  },
  (row, up, bpp, o, limit) => {
    let sum = 0;
    for (let i = 0; i < row.length; i++) {
      const a = i >= bpp ? row[i - bpp] : 0;
      const b = up[i];
      const c = i >= bpp ? up[i - bpp] : 0;
      const pa = b > c ? b - c : c - b;
      const pb = a > c ? a - c : c - a;
      const pc2 = a + b - 2 * c;
      const pc = pc2 < 0 ? -pc2 : pc2;
      const v = (row[i] - (pa <= pb && pa <= pc ? a : pb <= pc ? b : c)) & 0xff;
      o[i] = v;
      sum += cost(v);
      if (sum >= limit) return sum;
    }
    return sum;
  },
];

/**
 * Filters every row with each of PNG's five filters and keeps the one with the smallest sum of
 * absolute (signed) bytes, libpng's heuristic: it makes natural images compress markedly better
 * than no filtering, for little work.
 */
function filterRows(px: Uint8Array, height: number, stride: number, bpp: number): Buffer {
  const out = Buffer.alloc(height * (stride + 1));
  const cand = FILTERS.map(() => new Uint8Array(stride));
  const zero = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = px.subarray(y * stride, (y + 1) * stride);
    const up = y > 0 ? px.subarray((y - 1) * stride, y * stride) : zero;
    let best = 0;
    let bestSum = Infinity;
    for (let f = 0; f < FILTERS.length; f++) {
      const sum = FILTERS[f](row, up, bpp, cand[f], bestSum);
      if (sum < bestSum) {
        bestSum = sum;
        best = f;
      }
    }
    out[y * (stride + 1)] = best;
    out.set(cand[best], y * (stride + 1) + 1);
  }
  return out;
}

/**
 * An 8-bit PNG (1 channel grayscale, 3 RGB, 4 RGBA) built in process with zlib at its default
 * level, as TensorFlow's encode_png does by default. Decodes to exactly the input pixels.
 */
export function encodePngSync(pixels: Uint8Array, height: number, width: number, channels: number): Buffer {
  checkEncodeArgs(pixels, height, width, channels);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = COLOUR_TYPE[channels];
  // compression 0 (deflate), filter method 0, no interlace: already zero
  const filtered = filterRows(pixels, height, width * channels, channels);
  // A window just big enough for the data: zlib's set-up of the default 32 KiB window costs more
  // than compressing a small image, and a larger window than the data finds nothing more.
  let windowBits = 9;
  while (windowBits < 15 && 1 << windowBits < filtered.length + 262) windowBits++;
  const idat = zlib.deflateSync(filtered, { windowBits });
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}
