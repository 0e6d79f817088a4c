import { RandomState } from '../src/random';
import * as ops from '../src/data/image-ops';
import { AUGMENT_OPS, cutoutSquare, CTAUGMENT_OPS, getOp, RANDAUGMENT_OPS } from '../src/data/augment-ops';

const S3 = (h: number, w: number) => ({ height: h, width: w, channels: 3 });
const S1 = (h: number, w: number) => ({ height: h, width: w, channels: 1 });

function ramp(n: number, from: number, step: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => from + i * step);
}

describe('image ops on uint8 pixels', () => {
  it('autoContrast stretches each channel to 0..255 and leaves a flat channel alone', () => {
    const img = Uint8Array.from([50, 7, 9, 100, 7, 10, 150, 7, 11]); // 1x3 RGB
    const out = ops.autoContrast(img, S3(1, 3));
    expect(Array.from(out)).toEqual([0, 7, 0, 127, 7, 127, 255, 7, 255]);
  });

  it('equalize spreads a histogram as PIL does', () => {
    // four levels, equally common: PIL maps them to 0, 63, 127, 191 (step = (16 - 4) / 255 floored is 0 -> identity),
    // so use 1020 pixels: step = (1020 - 255) / 255 = 3
    const img = new Uint8Array(1020);
    for (let i = 0; i < 1020; i++) img[i] = [10, 20, 30, 40][i % 4];
    const out = ops.equalize(img, S1(1, 1020));
    const levels = [...new Set(out)].sort((a, b) => a - b);
    // lut[v] = floor((step/2 + pixels below v) / step), step = floor((1020 - 255) / 255) = 3
    expect(levels).toEqual([0, 85, 170, 255]);
    const flat = new Uint8Array(64).fill(9);
    expect(Array.from(ops.equalize(flat, S1(8, 8)))).toEqual(Array.from(flat));
  });

  it('posterize keeps the top bits; solarize inverts at and above the threshold', () => {
    const img = Uint8Array.from([255, 128, 127, 3]);
    expect(Array.from(ops.posterize(img, S1(2, 2), 1))).toEqual([128, 128, 0, 0]);
    expect(Array.from(ops.posterize(img, S1(2, 2), 8))).toEqual([255, 128, 127, 3]);
    expect(Array.from(ops.solarize(img, S1(2, 2), 128))).toEqual([0, 127, 127, 3]);
    expect(Array.from(ops.solarize(img, S1(2, 2), 256))).toEqual([255, 128, 127, 3]);
    expect(Array.from(ops.solarize(img, S1(2, 2), 0))).toEqual([0, 127, 128, 252]);
  });

  it('enhancement factors: 1 is the image, 0 black / grey / flat', () => {
    const img = Uint8Array.from([200, 100, 50, 10, 20, 30]);
    const s = S3(1, 2);
    for (const f of [ops.brightness, ops.color, ops.contrast, ops.sharpness]) expect(Array.from(f(img, s, 1))).toEqual(Array.from(img));
    expect(Array.from(ops.brightness(img, s, 0))).toEqual([0, 0, 0, 0, 0, 0]);
    const grey = ops.color(img, s, 0);
    expect(grey[0]).toBe(grey[1]);
    expect(grey[3]).toBe(grey[5]);
    const flat = ops.contrast(img, s, 0);
    expect(new Set(flat).size).toBe(1);
    expect(Array.from(ops.brightness(img, s, 2))).toEqual([255, 200, 100, 20, 40, 60]);
    // grey images: colour is a no-op, the others work on the one channel
    const g = Uint8Array.from([10, 200]);
    expect(Array.from(ops.color(g, S1(1, 2), 0))).toEqual([10, 200]);
    expect(Array.from(ops.contrast(g, S1(1, 2), 0))).toEqual([105, 105]);
  });

  it('sharpness 0 smooths the interior and keeps the border', () => {
    const img = new Uint8Array(9);
    img[4] = 130;
    const out = ops.sharpness(img, S1(3, 3), 0);
    expect(out[4]).toBe(Math.round((130 * 5) / 13));
    expect(Array.from(out).filter((_, i) => i !== 4)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('rotate 90 degrees is an exact counter-clockwise quarter turn on a square image', () => {
    const img = ramp(16, 1, 1); // 4x4 grey, row-major
    const out = ops.rotate(img, S1(4, 4), 90);
    // counter-clockwise: the top row becomes the left column read bottom-up
    const expected: number[] = [];
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expected.push(img[x * 4 + (3 - y)]);
    expect(Array.from(out)).toEqual(expected);
    expect(Array.from(ops.rotate(img, S1(4, 4), 0))).toEqual(Array.from(img));
  });

  it('translate moves whole pixels exactly and fills with mid-grey; shear 0 is the identity', () => {
    const img = ramp(8 * 2, 10, 3);
    const out = ops.translateX(img, S1(2, 8), 0.25); // 2 px right
    for (let y = 0; y < 2; y++) {
      expect(Array.from(out.subarray(y * 8, y * 8 + 2))).toEqual([ops.MID_GREY, ops.MID_GREY]);
      expect(Array.from(out.subarray(y * 8 + 2, y * 8 + 8))).toEqual(Array.from(img.subarray(y * 8, y * 8 + 6)));
    }
    const down = ops.translateY(ramp(4 * 3, 1, 1), S1(4, 3), -0.25); // 1 px up
    expect(Array.from(down)).toEqual([4, 5, 6, 7, 8, 9, 10, 11, 12, 128, 128, 128]);
    expect(Array.from(ops.shearX(img, S1(2, 8), 0))).toEqual(Array.from(img));
    expect(Array.from(ops.shearY(img, S1(2, 8), 0))).toEqual(Array.from(img));
  });

  it('geometric ops move every channel and interpolate between pixels', () => {
    const img = new Uint8Array(4 * 4 * 3);
    for (let p = 0; p < 16; p++) img.set([p * 10, 255 - p * 10, 77], p * 3);
    const half = ops.translateX(img, S3(4, 4), 0.125); // half a pixel
    // an interior pixel is the mean of its two horizontal source neighbours
    const p = 1 * 4 + 2;
    expect(half[p * 3]).toBe(Math.round((img[p * 3] + img[(p - 1) * 3]) / 2));
    expect(half[p * 3 + 2]).toBe(77);
  });

  it('fillRect clips to the image', () => {
    const out = ops.fillRect(new Uint8Array(9), S1(3, 3), -1, 2, 2, 5, 9);
    expect(Array.from(out)).toEqual([0, 0, 9, 0, 0, 0, 0, 0, 0]);
  });
});

describe('the FixMatch op set', () => {
  it('lists the paper operations', () => {
    expect([...RANDAUGMENT_OPS].sort()).toEqual(
      ['AutoContrast', 'Brightness', 'Color', 'Contrast', 'Equalize', 'Identity', 'Posterize', 'Rotate', 'Sharpness', 'ShearX', 'ShearY', 'Solarize', 'TranslateX', 'TranslateY'].sort(),
    );
    expect([...CTAUGMENT_OPS].sort()).toEqual([...RANDAUGMENT_OPS, 'Cutout'].sort());
    expect(getOp('Posterize').bins).toEqual([8]);
    expect(getOp('Identity').bins).toEqual([]);
    expect(() => getOp('Invert')).toThrow(/unknown augmentation op 'Invert'/);
  });

  it('maps levels to the paper ranges', () => {
    const img = new Uint8Array(4 * 4 * 3).fill(200);
    const s = S3(4, 4);
    const rng = new RandomState(1);
    const b = (v: number, f: 'randaugment' | 'ctaugment') => getOp('Brightness').apply(img, s, [v], f, rng)[0];
    expect(b(0, 'randaugment')).toBe(10); // 0.05
    expect(b(1, 'randaugment')).toBe(190); // 0.95
    expect(b(0, 'ctaugment')).toBe(20); // 0.1
    expect(b(1, 'ctaugment')).toBe(255); // 1.9, clipped
    const bits = (v: number, f: 'randaugment' | 'ctaugment') => getOp('Posterize').apply(Uint8Array.from([255, 255, 255]), S3(1, 1), [v], f, rng)[0];
    expect(bits(0, 'randaugment')).toBe(0xf0);
    expect(bits(0.9999, 'randaugment')).toBe(0xff);
    expect(bits(0, 'ctaugment')).toBe(0x80);
    // rotate ±30°: level 0 and 1 are mirror images of each other on a symmetric pattern
    const dot = new Uint8Array(9 * 9);
    dot[0 * 9 + 4] = 255;
    const l = getOp('Rotate').apply(dot, S1(9, 9), [0], 'randaugment', rng);
    const r = getOp('Rotate').apply(dot, S1(9, 9), [1], 'randaugment', rng);
    for (let y = 0; y < 9; y++) for (let x = 0; x < 9; x++) expect(l[y * 9 + x]).toBe(r[y * 9 + (8 - x)]);
    // translate 0.3 of 10 px = 3 px
    const row = ramp(10, 1, 1);
    expect(Array.from(getOp('TranslateX').apply(row, S1(1, 10), [1], 'randaugment', rng).subarray(3))).toEqual(Array.from(row.subarray(0, 7)));
    expect(AUGMENT_OPS.size).toBe(15);
  });

  it('cutout: a mid-grey square of half the side at level 1, anywhere, clipped', () => {
    const s = S1(32, 32);
    const img = new Uint8Array(32 * 32).fill(3);
    const rng = new RandomState(2);
    const counts = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const out = cutoutSquare(img, s, 1, rng);
      const n = out.filter((v) => v === ops.MID_GREY).length;
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(16 * 16);
      counts.add(n);
    }
    expect(counts.has(256)).toBe(true); // fully inside
    expect(counts.size).toBeGreaterThan(10); // clipped at borders sometimes
    expect(cutoutSquare(img, s, 0, rng).filter((v) => v === ops.MID_GREY).length).toBe(1);
  });
});
