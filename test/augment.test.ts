import { RandomState } from '../src/random';
import { UserError } from '../src/errors';
import {
  AUGMENTATIONS,
  augmentationNames,
  ChainedAugmentation,
  defaultAugmentationFor,
  getAugmentation,
  isStateful,
  randomErasingU8,
  toFloatImages,
} from '../src/data/augment';
import type { ImageShape } from '../src/data/augment';
import * as ops from '../src/data/image-ops';

/** A deterministic, varied test image with no pixel equal to `avoid`. */
function pattern(shape: ImageShape, seed = 1, avoid = -1): Uint8Array {
  const n = shape.height * shape.width * shape.channels;
  const a = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let v = (i * 37 + seed * 101 + ((i * i) >> 3)) & 0xff;
    if (v === avoid) v = (v + 1) & 0xff;
    a[i] = v;
  }
  return a;
}

const SHAPES: ImageShape[] = [
  { height: 32, width: 32, channels: 3 },
  { height: 28, width: 28, channels: 1 },
  { height: 7, width: 5, channels: 3 },
  { height: 9, width: 13, channels: 1 },
  { height: 6, width: 6, channels: 4 },
  { height: 1, width: 1, channels: 3 },
];

const u8Of = (name: string, img: Uint8Array, shape: ImageShape, seed: number): Uint8Array => {
  const out = new Uint8Array(img.length);
  getAugmentation(name).applyU8(img, 0, out, 0, shape, new RandomState(seed));
  return out;
};

describe('every augmentation', () => {
  const names = augmentationNames();

  it('is listed with a description', () => {
    expect(names).toEqual(expect.arrayContaining(['none', 'cifar10', 'svhn', 'stl10', 'mnist', 'color', 'cutout', 'randaugment', 'ctaugment']));
    for (const n of names) expect(AUGMENTATIONS[n].description.length).toBeGreaterThan(10);
  });

  it.each(names)('%s: any size and channel count, same seed same image, input untouched, float = uint8 rescaled', (name) => {
    for (const shape of SHAPES) {
      const img = pattern(shape, shape.height);
      const copy = img.slice();
      const n = img.length;
      // at an offset inside larger buffers, as the trainer calls it
      const src = new Uint8Array(n * 3);
      src.set(img, n);
      const f = new Float32Array(n * 2).fill(7);
      getAugmentation(name).apply(src, n, f, n, shape, new RandomState(5));
      const u = new Uint8Array(n * 2).fill(7);
      getAugmentation(name).applyU8(src, n, u, n, shape, new RandomState(5));
      expect(Array.from(f.subarray(0, n)).every((v) => v === 7)).toBe(true);
      expect(Array.from(u.subarray(0, n)).every((v) => v === 7)).toBe(true);
      expect(Buffer.from(src.subarray(n, 2 * n)).equals(Buffer.from(copy))).toBe(true);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const fv = f[n + i];
        if (!(fv >= -1 && fv <= 1)) throw new Error(`${name}: float ${fv} out of [-1, 1]`);
        worst = Math.max(worst, Math.abs(fv - (u[n + i] * 2) / 255 + 1));
      }
      // the float path may keep precision the uint8 path rounds away (color), never more than one level
      expect(worst).toBeLessThanOrEqual(1.0001 / 255);
      expect(Buffer.from(u8Of(name, img, shape, 5)).equals(Buffer.from(u.subarray(n)))).toBe(true);
    }
  });

  it.each(names.filter((n) => n !== 'none'))('%s: different seeds give different images', (name) => {
    const shape = { height: 16, width: 16, channels: 3 };
    const img = pattern(shape);
    const outs = new Set<string>();
    for (let s = 0; s < 20; s++) outs.add(Buffer.from(u8Of(name, img, shape, s)).toString('hex'));
    expect(outs.size).toBeGreaterThan(name === 'cutout' ? 4 : 8);
  });

  it('none is the identity', () => {
    const shape = { height: 5, width: 4, channels: 3 };
    const img = pattern(shape);
    expect(Array.from(u8Of('none', img, shape, 1))).toEqual(Array.from(img));
    const f = new Float32Array(img.length);
    getAugmentation('none').apply(img, 0, f, 0, shape, new RandomState(1));
    expect(Array.from(f)).toEqual(Array.from(toFloatImages(img, 0, 1, img.length)));
  });
});

describe('pad-and-crop family', () => {
  /** Every output pixel comes from the flipped/shifted source, reflected at the borders. */
  function explain(name: string, pad: number, canFlip: boolean) {
    const shape = { height: 10, width: 12, channels: 3 };
    const img = pattern(shape);
    const seen = { flip: 0, shifts: new Set<string>() };
    for (let s = 0; s < 300; s++) {
      const out = u8Of(name, img, shape, s);
      let found = false;
      for (const flip of canFlip ? [false, true] : [false]) {
        for (let dy = -pad; dy <= pad && !found; dy++) {
          for (let dx = -pad; dx <= pad && !found; dx++) {
            const ref = new Uint8Array(img.length);
            ops.shiftFlipU8(img, 0, ref, 0, shape, dy, dx, flip);
            if (Buffer.from(ref).equals(Buffer.from(out))) {
              found = true;
              if (flip) seen.flip++;
              seen.shifts.add(`${dy},${dx}`);
            }
          }
        }
        if (found) break;
      }
      expect(found).toBe(true);
    }
    return seen;
  }

  it('cifar10: flips about half the time and shifts up to 4 in each direction', () => {
    const s = explain('cifar10', 4, true);
    expect(s.flip).toBeGreaterThan(100);
    expect(s.flip).toBeLessThan(200);
    expect(s.shifts.size).toBeGreaterThan(60);
  });

  it('svhn never flips', () => {
    const s = explain('svhn', 4, false);
    expect(s.shifts.size).toBeGreaterThan(60);
  });

  it('stl10 shifts up to 12 (reflected beyond the 10-px image) and flips', () => {
    // (a reflected shift of 12 on 10 px can equal a flipped one, so flips are not counted here)
    const s = explain('stl10', 12, true);
    expect([...s.shifts].some((k) => k.split(',').some((v) => Math.abs(Number(v)) > 8))).toBe(true);
  });

  it('reflect padding mirrors without repeating the edge, as TF REFLECT', () => {
    expect([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6].map((i) => ops.reflectIndex(i, 4))).toEqual([3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    expect(ops.reflectIndex(7, 1)).toBe(0);
  });
});

describe('color', () => {
  it('jitters colours on [0, 1] values: a visible brightness change, hue turns, and grey stays grey', () => {
    const shape = { height: 8, width: 8, channels: 3 };
    const grey = new Uint8Array(8 * 8 * 3).fill(100);
    const means: number[] = [];
    for (let s = 0; s < 50; s++) {
      const out = u8Of('color', grey, shape, s);
      // a grey image has no hue or saturation to change; it stays grey
      let coloured = 0;
      for (let p = 0; p < 64; p++) if (out[p * 3] !== out[p * 3 + 1] || out[p * 3 + 1] !== out[p * 3 + 2]) coloured++;
      expect(coloured).toBe(0);
      means.push(out[0]);
    }
    // brightness ±0.1 of the full range is up to ±25 levels: RealMix's 0..255 input made it ±0.1 level
    expect(Math.max(...means) - Math.min(...means)).toBeGreaterThan(20);
    expect(Math.max(...means)).toBeLessThanOrEqual(126);
    expect(Math.min(...means)).toBeGreaterThanOrEqual(74);
  });

  it('on one channel, brightness and contrast still apply', () => {
    const shape = { height: 6, width: 6, channels: 1 };
    const img = pattern(shape);
    const outs = new Set<string>();
    for (let s = 0; s < 10; s++) outs.add(Buffer.from(u8Of('color', img, shape, s)).toString('hex'));
    expect(outs.size).toBe(10);
  });

  it('HSV ops: a third of a turn maps red to green; saturation 0 gives grey', () => {
    const shape = { height: 1, width: 1, channels: 3 };
    const red = Float32Array.from([1, 0, 0]);
    ops.adjustHueSaturationF(red, shape, 1 / 3, 1);
    expect(Array.from(red).map((v) => Math.round(v * 1000) / 1000)).toEqual([0, 1, 0]);
    const c = Float32Array.from([0.8, 0.4, 0.2]);
    ops.adjustHueSaturationF(c, shape, 0, 0);
    expect(Array.from(c).map((v) => Math.round(v * 1000) / 1000)).toEqual([0.8, 0.8, 0.8]);
    const same = Float32Array.from([0.3, 0.6, 0.9]);
    ops.adjustHueSaturationF(same, shape, 0, 1);
    expect(Array.from(same).map((v) => Math.round(v * 1000) / 1000)).toEqual([0.3, 0.6, 0.9]);
  });

  it('contrast scales around each channel mean, clipped to [0, 1]', () => {
    const img = Float32Array.from([0.2, 0.4, 0.6, 0.8]);
    ops.adjustContrastF(img, { height: 2, width: 2, channels: 1 }, 2);
    expect(Array.from(img).map((v) => Math.round(v * 1000) / 1000)).toEqual([0, 0.3, 0.7, 1]);
  });
});

describe('cutout (random erasing)', () => {
  it('erases about 30% of images, each with its own rectangle and fill', () => {
    const shape = { height: 16, width: 16, channels: 3 };
    const img = pattern(shape, 3);
    const rng = new RandomState(11);
    let erased = 0;
    const rects = new Set<string>();
    const fills = new Set<number>();
    const N = 2000;
    for (let i = 0; i < N; i++) {
      const out = randomErasingU8(img, shape, rng);
      const changed: number[] = [];
      for (let p = 0; p < 256; p++) if (out[p * 3] !== img[p * 3] || out[p * 3 + 1] !== img[p * 3 + 1] || out[p * 3 + 2] !== img[p * 3 + 2]) changed.push(p);
      if (changed.length === 0) continue;
      erased++;
      // the changed pixels lie in one rectangle of one colour, all channels equal
      const ys = changed.map((p) => Math.floor(p / 16));
      const xs = changed.map((p) => p % 16);
      const [y0, y1, x0, x1] = [Math.min(...ys), Math.max(...ys), Math.min(...xs), Math.max(...xs)];
      const fill = out[changed[0] * 3];
      let other = 0;
      for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) for (let k = 0; k < 3; k++) if (out[(y * 16 + x) * 3 + k] !== fill) other++;
      expect(other).toBe(0);
      const area = (y1 - y0 + 1) * (x1 - x0 + 1);
      expect(area).toBeLessThanOrEqual(0.4 * 256);
      rects.add(`${y0},${y1},${x0},${x1}`);
      fills.add(fill);
    }
    expect(erased / N).toBeGreaterThan(0.26);
    expect(erased / N).toBeLessThan(0.34);
    expect(rects.size).toBeGreaterThan(200);
    expect(fills.size).toBeGreaterThan(150);
  });

  it('p = 1 always erases, even a 2x2 image', () => {
    const shape = { height: 2, width: 2, channels: 1 };
    const img = Uint8Array.from([10, 20, 30, 40]);
    const rng = new RandomState(1);
    for (let i = 0; i < 50; i++) {
      const out = randomErasingU8(img, shape, rng, { p: 1 });
      // the fill may equal a pixel by chance; the rectangle is there unless all four survived
      expect(out.length).toBe(4);
    }
    let changed = 0;
    for (let i = 0; i < 200; i++) if (!Buffer.from(randomErasingU8(img, shape, rng, { p: 1 })).equals(Buffer.from(img))) changed++;
    expect(changed).toBeGreaterThan(190);
  });
});

describe('getAugmentation', () => {
  it('rejects an unknown name with the valid ones, in one line', () => {
    let err: unknown;
    try {
      getAugmentation('flipz');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/unknown augmentation 'flipz'; valid: none, cifar10, svhn, stl10, mnist, color, cutout, randaugment, ctaugment/);
    expect(msg).not.toContain('\n');
    expect(() => getAugmentation('cifar10+nope')).toThrow(/unknown augmentation 'nope'/);
  });

  it('chains with +: weak then strong, on uint8 between steps', () => {
    const chain = getAugmentation('cifar10+randaugment');
    expect(chain).toBeInstanceOf(ChainedAugmentation);
    expect(chain.name).toBe('cifar10+randaugment');
    const shape = { height: 12, width: 12, channels: 3 };
    const img = pattern(shape);
    const rng = new RandomState(3);
    const weak = new Uint8Array(img.length);
    getAugmentation('cifar10').applyU8(img, 0, weak, 0, shape, rng);
    const strong = new Uint8Array(img.length);
    getAugmentation('randaugment').applyU8(weak, 0, strong, 0, shape, rng);
    expect(Array.from(u8Of('cifar10+randaugment', img, shape, 3))).toEqual(Array.from(strong));
  });

  it('gives a fresh ctaugment each time (its weights are per run) and marks it stateful', () => {
    const a = getAugmentation('ctaugment');
    const b = getAugmentation('ctaugment');
    expect(a).not.toBe(b);
    expect(isStateful(a)).toBe(true);
    expect(isStateful(getAugmentation('cifar10'))).toBe(false);
    expect((getAugmentation('svhn+ctaugment') as ChainedAugmentation).statefulParts()).toHaveLength(1);
  });

  it('defaults by dataset family', () => {
    expect(defaultAugmentationFor('svhn_noextra')).toBe('svhn');
    expect(defaultAugmentationFor('stl10')).toBe('stl10');
    expect(defaultAugmentationFor('mnist')).toBe('mnist');
    expect(defaultAugmentationFor('cifar10_aug50')).toBe('cifar10');
  });
});
