import sharp from 'sharp';
import { RandomState } from '../src/random';
import { getAugmentation } from '../src/data/augment';
import { augmentRecord, decodePngFast, packRecords, unpackRecords } from '../src/data/aug-copy-codec';
import { decodeImageExample, encodeImageExample } from '../src/data/example';
import { decodeImage, encodePngSync } from '../src/data/png';

function pixels(n: number, seed: number): Uint8Array {
  const r = new RandomState(seed);
  // smooth with some noise, so that every PNG row filter gets picked somewhere
  return Uint8Array.from({ length: n }, (_, i) => ((i * 3) & 0xff) ^ (r.randint(0, 4) * (i % 7 === 0 ? 60 : 1)));
}

describe('the in-process PNG reader', () => {
  it.each([1, 3, 4])('reads our own %i-channel PNGs exactly', async (c) => {
    const px = pixels(9 * 11 * c, c);
    const png = encodePngSync(px, 9, 11, c);
    const fast = decodePngFast(png)!;
    expect(fast).toMatchObject({ height: 9, width: 11, channels: c });
    expect(Buffer.from(fast.data).equals(Buffer.from(px))).toBe(true);
  });

  it('agrees with sharp on PNGs written by libpng, grey+alpha included', async () => {
    for (const [c, opts] of [[1, {}], [2, {}], [3, { compressionLevel: 9, adaptiveFiltering: true }], [4, { compressionLevel: 1 }]] as const) {
      const px = pixels(13 * 7 * c, 10 + c);
      let img = sharp(Buffer.from(px), { raw: { width: 7, height: 13, channels: c } });
      if (c <= 2) img = img.toColourspace('b-w');
      const png = await img.png(opts).toBuffer();
      const fast = decodePngFast(png)!;
      const ref = await decodeImage(png);
      expect(fast).toMatchObject({ height: ref.height, width: ref.width, channels: ref.channels });
      expect(Buffer.from(fast.data).equals(Buffer.from(ref.data))).toBe(true);
    }
  });

  it('hands palette, interlaced and non-PNG data to the general decoder', async () => {
    const px = pixels(8 * 8 * 3, 1);
    const raw = sharp(Buffer.from(px), { raw: { width: 8, height: 8, channels: 3 } });
    expect(decodePngFast(await raw.clone().png({ palette: true }).toBuffer())).toBeNull();
    expect(decodePngFast(await raw.clone().png({ progressive: true }).toBuffer())).toBeNull();
    expect(decodePngFast(await raw.clone().jpeg().toBuffer())).toBeNull();
    expect(() => decodePngFast(encodePngSync(px, 8, 8, 3).subarray(0, 40))).toThrow();
  });
});

describe('augmentRecord', () => {
  it('keeps the label and shape, and is a function of the seed', async () => {
    const rec = encodeImageExample(encodePngSync(pixels(10 * 10 * 3, 2), 10, 10, 3), 7);
    const aug = getAugmentation('randaugment');
    const a = await augmentRecord(rec, aug, 5);
    const b = await augmentRecord(rec, aug, 5);
    const c = await augmentRecord(rec, aug, 6);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
    const ex = decodeImageExample(a);
    expect(ex.label).toBe(7);
    expect(await decodeImage(ex.image)).toMatchObject({ height: 10, width: 10, channels: 3 });
    // a JPEG record goes through sharp and comes back as PNG
    const jpeg = await sharp(Buffer.from(pixels(10 * 10 * 3, 3)), { raw: { width: 10, height: 10, channels: 3 } }).jpeg().toBuffer();
    const fromJpeg = decodeImageExample(await augmentRecord(encodeImageExample(jpeg, 1), aug, 1));
    expect(fromJpeg.image[1]).toBe(0x50); // 'P' of PNG
  });

  it('packs runs of records into one buffer and back', () => {
    const recs = [Uint8Array.from([1, 2]), new Uint8Array(0), Uint8Array.from([3])];
    const { buffer, lengths } = packRecords(recs);
    expect(unpackRecords(buffer, lengths).map((r) => Array.from(r))).toEqual([[1, 2], [], [3]]);
  });
});
