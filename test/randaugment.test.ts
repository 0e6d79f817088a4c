import { RandomState } from '../src/random';
import { getAugmentation } from '../src/data/augment';
import { MID_GREY } from '../src/data/image-ops';
import { RANDAUGMENT_OPS } from '../src/data/augment-ops';
import { randAugmentU8 } from '../src/data/randaugment';

function noise(n: number, seed: number, avoid = MID_GREY): Uint8Array {
  const r = new RandomState(seed);
  return Uint8Array.from({ length: n }, () => {
    const v = r.randint(0, 256);
    return v === avoid ? v + 1 : v;
  });
}

describe('RandAugment (FixMatch variant)', () => {
  const shape = { height: 32, width: 32, channels: 3 };

  it('is reproducible from the seed and changes with it', () => {
    const img = noise(32 * 32 * 3, 1);
    const a = randAugmentU8(img, shape, new RandomState(9));
    const b = randAugmentU8(img, shape, new RandomState(9));
    const c = randAugmentU8(img, shape, new RandomState(10));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  });

  it('draws two ops uniformly from the 14, with replacement', () => {
    // the op index is the first draw of each op: replay the generator to see which ops were chosen
    const counts = new Map<string, number>();
    const rng = new RandomState(4);
    for (let i = 0; i < 1400; i++) {
      const idx = rng.randint(0, RANDAUGMENT_OPS.length);
      counts.set(RANDAUGMENT_OPS[idx], (counts.get(RANDAUGMENT_OPS[idx]) ?? 0) + 1);
    }
    expect(counts.size).toBe(14);
    for (const n of counts.values()) {
      expect(n).toBeGreaterThan(60);
      expect(n).toBeLessThan(140);
    }
  });

  it('always ends with a cutout square of half the side (mid-grey)', () => {
    const img = noise(32 * 32 * 3, 2);
    for (let s = 0; s < 40; s++) {
      const out = randAugmentU8(img, shape, new RandomState(s), { nOps: 0 });
      let grey = 0;
      for (let p = 0; p < 1024; p++) if (out[p * 3] === MID_GREY && out[p * 3 + 1] === MID_GREY && out[p * 3 + 2] === MID_GREY) grey++;
      expect(grey).toBeGreaterThanOrEqual(8 * 8); // at worst a quarter of the square, in a corner
      expect(grey).toBeLessThanOrEqual(16 * 16);
    }
    const without = randAugmentU8(img, shape, new RandomState(0), { nOps: 0, cutout: false });
    expect(Buffer.from(without).equals(Buffer.from(img))).toBe(true);
  });

  it('strongly changes images on average, and works on grey and odd-sized ones', () => {
    let total = 0;
    const img = noise(32 * 32 * 3, 3);
    for (let s = 0; s < 50; s++) {
      const out = randAugmentU8(img, shape, new RandomState(s), { cutout: false });
      let d = 0;
      for (let i = 0; i < img.length; i++) d += Math.abs(out[i] - img[i]);
      total += d / img.length;
    }
    expect(total / 50).toBeGreaterThan(10);
    for (const sh of [{ height: 28, width: 28, channels: 1 }, { height: 5, width: 11, channels: 3 }, { height: 1, width: 1, channels: 1 }]) {
      const g = noise(sh.height * sh.width * sh.channels, 5);
      for (let s = 0; s < 30; s++) expect(randAugmentU8(g, sh, new RandomState(s)).length).toBe(g.length);
    }
  });

  it('is the randaugment augmentation, float output in [-1, 1]', () => {
    const img = noise(32 * 32 * 3, 6);
    const f = new Float32Array(img.length);
    getAugmentation('randaugment').apply(img, 0, f, 0, shape, new RandomState(1));
    const u = randAugmentU8(img, shape, new RandomState(1));
    for (let i = 0; i < u.length; i += 97) expect(f[i]).toBeCloseTo((u[i] * 2) / 255 - 1, 6);
  });
});
