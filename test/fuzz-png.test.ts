import sharp from 'sharp';
import { decodeImage, encodePngSync, MAX_IMAGE_PIXELS, type DecodedImage } from '../src/data/png';
import { UserError } from '../src/errors';
import { expectClean, fuzzInputs, runFuzz } from './helpers/fuzz';

/**
 * PNG and JPEG decoding (through sharp) under damage: every input ends in a one-line UserError
 * or a well-formed image, quickly, with declared sizes checked before pixels are allocated.
 */

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Fixes the CRC of every PNG chunk it can reach, so damage gets past libpng's checksums. */
function repairPng(bytes: Uint8Array): Uint8Array {
  const b = Buffer.from(bytes);
  if (b.length < 8 || b[1] !== 0x50 || b[2] !== 0x4e || b[3] !== 0x47) return b; // JPEG: no checksums
  let pos = 8;
  while (pos + 12 <= b.length) {
    const len = b.readUInt32BE(pos);
    if (pos + 12 + len > b.length) break;
    b.writeUInt32BE(crc32(b.subarray(pos + 4, pos + 8 + len)), pos + 8 + len);
    pos += 12 + len;
  }
  return b;
}

const pixels = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);

async function seeds(): Promise<Uint8Array[]> {
  const raw = (w: number, h: number, c: 1 | 2 | 3 | 4) => sharp(Buffer.from(pixels(w * h * c)), { raw: { width: w, height: h, channels: c } });
  return [
    encodePngSync(pixels(5 * 4), 4, 5, 1),
    encodePngSync(pixels(3 * 3 * 3), 3, 3, 3),
    encodePngSync(pixels(2 * 2 * 4), 2, 2, 4),
    await raw(3, 2, 2).png().toBuffer(),
    await raw(4, 4, 3).toColourspace('rgb16').png().toBuffer(),
    await raw(8, 8, 3).jpeg({ quality: 80 }).toBuffer(),
    await raw(8, 8, 1).jpeg().toBuffer(),
    await raw(16, 8, 3).jpeg({ progressive: true }).toBuffer(),
  ];
}

test('PNG and JPEG: random and damaged images end in a UserError or a well-formed image', async () => {
  const stats = await runFuzz(
    fuzzInputs({ seeds: await seeds(), mutations: 2500, random: 400, randomMaxBytes: 300, maxTruncations: 64, repair: repairPng, seed: 11 }),
    (input): Promise<DecodedImage> => decodeImage(input.bytes),
    {
      timeoutMs: 5000,
      check: (img) => {
        const { width, height, channels, data } = img;
        if (!(width > 0 && height > 0 && width * height <= MAX_IMAGE_PIXELS)) throw new Error(`size ${width}x${height}`);
        if (!(channels >= 1 && channels <= 4) || data.length !== width * height * channels) throw new Error(`${data.length} bytes for ${width}x${height}x${channels}`);
      },
      checkError: (e: UserError) => {
        if (!e.message.startsWith('cannot decode image: ')) throw new Error('unclear error');
        if (e.message.length > 300) throw new Error(`error is ${e.message.length} characters long`);
      },
    },
  );
  expectClean('PNG/JPEG', stats, 3000);
  expect(stats.ok).toBeGreaterThan(200);
  expect(stats.rejected).toBeGreaterThan(1000);
});

test('a PNG or JPEG that declares a huge size is refused before its pixels are allocated', async () => {
  const rss = process.memoryUsage.rss();
  const png = (w: number, h: number): Uint8Array => {
    const b = Buffer.from(encodePngSync(pixels(16), 2, 2, 4));
    b.writeUInt32BE(w, 16); // IHDR width and height
    b.writeUInt32BE(h, 20);
    return repairPng(b);
  };
  // over the pixel limit; then under it, but far more than 80-odd bytes can hold
  await expect(decodeImage(png(0xffff, 0xffff))).rejects.toThrow(/^cannot decode image: .*pixel limit/);
  await expect(decodeImage(png(0x2000002, 2))).rejects.toThrow(/^cannot decode image: the header declares 33554434x2 pixels, more than \d+ bytes of png data can hold/);
  const jpeg = Buffer.from(await sharp(Buffer.from(pixels(64 * 3)), { raw: { width: 8, height: 8, channels: 3 } }).jpeg().toBuffer());
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
  jpeg.writeUInt16BE(12000, sof + 5);
  jpeg.writeUInt16BE(12000, sof + 7);
  await expect(decodeImage(jpeg)).rejects.toThrow(/^cannot decode image: the header declares 12000x12000 pixels/);
  expect(process.memoryUsage.rss() - rss).toBeLessThan(64 * 2 ** 20);
  // a legitimately well-compressed image is still read: 1000x1000 of one grey
  const flat = encodePngSync(new Uint8Array(1000 * 1000).fill(128), 1000, 1000, 1);
  expect(flat.length).toBeLessThan(10_000); // over 100:1
  const img = await decodeImage(flat);
  expect([img.width, img.height, img.channels]).toEqual([1000, 1000, 1]);
});
