import * as zlib from 'zlib';
import sharp from 'sharp';
import { decodeImage, encodePng, encodePngSync } from '../src/data/png';
import { UserError } from '../src/errors';

function pattern(n: number, seed: number): Uint8Array {
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 37 + seed * 101 + ((i * i) >> 3)) & 0xff;
  return a;
}

/** PNG colour type from the IHDR chunk: 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA. */
const colourType = (png: Uint8Array): number => png[25];

describe('PNG via sharp', () => {
  it.each([1, 3, 4])('round-trips %i-channel pixels exactly', async (channels) => {
    const h = 7;
    const w = 5;
    const px = pattern(h * w * channels, channels);
    const png = await encodePng(px, h, w, channels);
    expect(colourType(png)).toBe({ 1: 0, 3: 2, 4: 6 }[channels]);
    const back = await decodeImage(png);
    expect(back).toMatchObject({ height: h, width: w, channels });
    expect(Buffer.from(back.data).equals(Buffer.from(px))).toBe(true);
  });

  it('keeps a grayscale+alpha PNG at 2 channels', async () => {
    const px = pattern(4 * 3 * 2, 9);
    const png = await sharp(Buffer.from(px), { raw: { width: 3, height: 4, channels: 2 } }).toColourspace('b-w').png().toBuffer();
    expect(colourType(png)).toBe(4);
    const back = await decodeImage(png);
    expect(back).toMatchObject({ height: 4, width: 3, channels: 2 });
    expect(Buffer.from(back.data).equals(Buffer.from(px))).toBe(true);
  });

  it('decodes JPEG, keeping grayscale at 1 channel', async () => {
    const flat = new Uint8Array(16 * 16).fill(100);
    const gray = await sharp(Buffer.from(flat), { raw: { width: 16, height: 16, channels: 1 } }).toColourspace('b-w').jpeg({ quality: 95 }).toBuffer();
    const g = await decodeImage(gray);
    expect(g).toMatchObject({ height: 16, width: 16, channels: 1 });
    expect(Math.abs(g.data[0] - 100)).toBeLessThanOrEqual(1);
    const rgb = await sharp(Buffer.from(new Uint8Array(8 * 8 * 3).fill(200)), { raw: { width: 8, height: 8, channels: 3 } }).jpeg().toBuffer();
    const c = await decodeImage(rgb);
    expect(c).toMatchObject({ height: 8, width: 8, channels: 3 });
    expect(Math.abs(c.data[5] - 200)).toBeLessThanOrEqual(2);
  });

  it('scales 16-bit PNGs to 8 bits', async () => {
    const png16 = await sharp(Buffer.from(new Uint8Array(2 * 2 * 3).fill(128)), { raw: { width: 2, height: 2, channels: 3 } })
      .toColourspace('rgb16')
      .png()
      .toBuffer();
    expect(png16[24]).toBe(16);
    const back = await decodeImage(png16);
    expect(back.channels).toBe(3);
    expect(Array.from(back.data)).toEqual(new Array(12).fill(128));
  });

  it('throws a clear error on garbage', async () => {
    await expect(decodeImage(new TextEncoder().encode('definitely not an image'))).rejects.toThrow(/cannot decode image.*PNG or JPEG/);
    const png = await encodePng(pattern(12, 1), 2, 2, 3);
    await expect(decodeImage(png.subarray(0, 30))).rejects.toThrow(/cannot decode image/);
  });

  it('reads PNG, JPEG and GIF only, with one-line UserErrors for anything else', async () => {
    const raw = sharp(Buffer.from(pattern(12, 2)), { raw: { width: 2, height: 2, channels: 3 } });
    expect((await decodeImage(await raw.clone().gif().toBuffer())).width).toBe(2);
    for (const other of [await raw.clone().webp().toBuffer(), await raw.clone().tiff().toBuffer()]) {
      const e = await decodeImage(other).catch((x: unknown) => x as Error);
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).toMatch(/^cannot decode image: (webp|tiff) data \(expected PNG or JPEG data\)$/);
    }
  });

  it('rejects bad shapes before encoding', async () => {
    await expect(encodePng(new Uint8Array(5), 2, 2, 1)).rejects.toThrow('expected 2x2x1 = 4 pixel values, got 5');
    await expect(encodePng(new Uint8Array(8), 2, 2, 2)).rejects.toThrow('1, 3 or 4 channels');
  });
});

describe('encodePngSync', () => {
  it.each([
    [1, 28, 28],
    [3, 9, 13],
    [4, 1, 1],
  ])('writes a %i-channel %ix%i PNG that sharp decodes to the same pixels', async (channels, h, w) => {
    const px = pattern(h * w * channels, h);
    const png = encodePngSync(px, h, w, channels);
    expect(colourType(png)).toBe({ 1: 0, 3: 2, 4: 6 }[channels]);
    const back = await decodeImage(png);
    expect(back).toMatchObject({ height: h, width: w, channels });
    expect(Buffer.from(back.data).equals(Buffer.from(px))).toBe(true);
  });

  it('uses each of the five row filters where it fits, and still decodes exactly', async () => {
    // each odd row sets up the row below it, which is built so that one filter predicts it best
    const w = 32;
    const rows: number[][] = [];
    const noise = (k: number): number[] => Array.from({ length: w }, (_, i) => (i * 97 + k * 61 + ((i * i * 13) >> 2)) & 0xff);
    const paeth = (a: number, b: number, c: number): number => {
      const p = a + b - c;
      const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
      return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    };
    rows.push(new Array(w).fill(0)); // None: all zero already
    rows.push(noise(1));
    rows.push(Array.from({ length: w }, (_, i) => i * 7)); // Sub: a steady ramp
    rows.push(noise(2));
    rows.push([...rows[3]]); // Up: a copy of the row above
    rows.push(noise(3));
    const avg: number[] = [];
    for (let i = 0; i < w; i++) avg.push(((i > 0 ? avg[i - 1] : 0) + rows[5][i]) >> 1);
    rows.push(avg); // Average
    rows.push(Array.from({ length: w }, (_, i) => ((i >> 2) * 40) & 0xff)); // steps: Paeth switches between a, b and c
    const pae: number[] = [];
    for (let i = 0; i < w; i++) pae.push(i === 0 ? 200 : paeth(pae[i - 1], rows[7][i], rows[7][i - 1]));
    rows.push(pae); // Paeth
    const h = rows.length;
    const px = Uint8Array.from(rows.flat());
    const png = encodePngSync(px, h, w, 1);
    const idatLen = png.readUInt32BE(33);
    expect(png.subarray(37, 41).toString('latin1')).toBe('IDAT');
    const filtered = zlib.inflateSync(png.subarray(41, 41 + idatLen));
    const used = Array.from({ length: h }, (_, y) => filtered[y * (w + 1)]);
    expect([used[0], used[2], used[4], used[6], used[8]]).toEqual([0, 1, 2, 3, 4]);
    const back = await decodeImage(png);
    expect(Buffer.from(back.data).equals(Buffer.from(px))).toBe(true);
  });

  it('is deterministic', () => {
    const px = pattern(28 * 28, 3);
    expect(encodePngSync(px, 28, 28, 1).equals(encodePngSync(px, 28, 28, 1))).toBe(true);
  });
});
