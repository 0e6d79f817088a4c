import { RandomState } from '../src/random';
import { CTAugment, ctaProximity, CtaPolicy } from '../src/data/ctaugment';
import { CTAUGMENT_OPS } from '../src/data/augment-ops';
import { getAugmentation } from '../src/data/augment';

function noise(n: number, seed: number): Uint8Array {
  const r = new RandomState(seed);
  return Uint8Array.from({ length: n }, () => r.randint(0, 256));
}

describe('CTAugment', () => {
  it('starts with every bin at weight 1: 17 bins per parameter, 8 for Posterize', () => {
    const s = new CTAugment().getState();
    expect(s).toMatchObject({ version: 1, depth: 2, threshold: 0.8, decay: 0.99 });
    expect(Object.keys(s.rates).sort()).toEqual([...CTAUGMENT_OPS].sort());
    expect(s.rates.Brightness).toEqual([new Array(17).fill(1)]);
    expect(s.rates.Posterize).toEqual([new Array(8).fill(1)]);
    expect(s.rates.Identity).toEqual([]);
  });

  it('proximity is 1 − ½|p − onehot|₁', () => {
    expect(ctaProximity([0, 1, 0], 1)).toBe(1);
    expect(ctaProximity([1, 0, 0], 1)).toBe(0);
    expect(ctaProximity(new Array(10).fill(0.1), 3)).toBeCloseTo(0.1, 12);
  });

  it('update moves the used bin: weight ← 0.99·weight + 0.01·proximity', () => {
    const cta = new CTAugment();
    const policy: CtaPolicy = [{ op: 'Brightness', levels: [0.5] }, { op: 'Posterize', levels: [0.99] }, { op: 'Identity', levels: [] }];
    cta.update(policy, 0.2);
    const s = cta.getState();
    // bin = ⌊v·bins·0.999⌋: 0.5 → 8 of 17, 0.99 → 7 of 8
    expect(s.rates.Brightness[0][8]).toBeCloseTo(0.99 + 0.002, 12);
    expect(s.rates.Brightness[0].filter((v) => v !== 1)).toHaveLength(1);
    expect(s.rates.Posterize[0][7]).toBeCloseTo(0.992, 12);
    expect(() => cta.update([{ op: 'Nope', levels: [0.1] }], 1)).toThrow(/unknown op/);
  });

  it('bins that keep failing are no longer drawn; others still are', () => {
    const cta = new CTAugment();
    // fail bins 0..7 of Rotate (negative angles) 500 times
    for (let i = 0; i < 500; i++) for (let b = 0; b < 8; b++) cta.update([{ op: 'Rotate', levels: [(b + 0.5) / 17] }], 0);
    const w = cta.binWeights(cta.getState().rates.Rotate[0]);
    expect(Array.from(w.subarray(0, 8))).toEqual(new Array(8).fill(0));
    const rng = new RandomState(1);
    let rotates = 0;
    for (let i = 0; i < 3000; i++) {
      for (const { op, levels } of cta.samplePolicy(rng)) {
        if (op !== 'Rotate') continue;
        rotates++;
        expect(levels[0]).toBeGreaterThanOrEqual(8 / 17);
      }
    }
    expect(rotates).toBeGreaterThan(200);
    // probes ignore the weights: they explore the whole range
    let low = 0;
    for (let i = 0; i < 3000; i++) for (const { op, levels } of cta.probePolicy(rng)) if (op === 'Rotate' && levels[0] < 8 / 17) low++;
    expect(low).toBeGreaterThan(50);
  });

  it('state round-trips through JSON: the restored one draws the same policies and images', () => {
    const a = new CTAugment();
    const rng = new RandomState(3);
    for (let i = 0; i < 200; i++) a.update(a.probePolicy(rng), rng.randomSample());
    const b = new CTAugment();
    b.setState(JSON.parse(JSON.stringify(a.getState())));
    expect(b.getState()).toEqual(a.getState());
    const shape = { height: 16, width: 16, channels: 3 };
    const img = noise(16 * 16 * 3, 1);
    for (let s = 0; s < 20; s++) {
      expect(b.samplePolicy(new RandomState(s))).toEqual(a.samplePolicy(new RandomState(s)));
      expect(Buffer.from(b.augmentU8(img, shape, new RandomState(s))).equals(Buffer.from(a.augmentU8(img, shape, new RandomState(s))))).toBe(true);
    }
  });

  it('rejects a damaged state and keeps the old one', () => {
    const cta = new CTAugment();
    const good = cta.getState();
    const bad = [
      null,
      { ...good, version: 2 },
      { ...good, decay: 2 },
      { ...good, rates: { ...good.rates, Rotate: [[1, 2]] } },
      { ...good, rates: { ...good.rates, Extra: [] } },
      { ...good, rates: { ...good.rates, Color: [new Array(17).fill(NaN)] } },
    ];
    for (const s of bad) expect(() => cta.setState(s)).toThrow(/CTAugment state is invalid/);
    expect(cta.getState()).toEqual(good);
  });

  it('is the ctaugment augmentation: policy then cutout, any channel count', () => {
    const aug = getAugmentation('ctaugment');
    for (const shape of [{ height: 32, width: 32, channels: 3 }, { height: 28, width: 28, channels: 1 }, { height: 3, width: 7, channels: 3 }]) {
      const img = noise(shape.height * shape.width * shape.channels, 2);
      const out = new Uint8Array(img.length);
      aug.applyU8(img, 0, out, 0, shape, new RandomState(1));
      expect(Buffer.from(out).equals(Buffer.from(img))).toBe(false);
      const cta = new CTAugment();
      const rng = new RandomState(1);
      const applied = cta.applyPolicyU8(img, shape, cta.samplePolicy(rng), rng);
      expect(applied.length).toBe(img.length);
    }
  });
});
