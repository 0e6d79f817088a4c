import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { RandomState } from '../src/random';
import { getAugmentation } from '../src/data/augment';
import { AugmentPool, drawSeeds, Prefetcher } from '../src/data/augment-pool';
import { CTAugment } from '../src/data/ctaugment';

const shape = { height: 12, width: 10, channels: 3 };
const N = shape.height * shape.width * shape.channels;

function batch(count: number): Uint8Array {
  const r = new RandomState(42);
  return Uint8Array.from({ length: count * N }, () => r.randint(0, 256));
}

/** What the pool must give: image i through apply() with a generator seeded by seeds[i]. */
function direct(name: string, images: Uint8Array, seeds: Uint32Array): Float32Array {
  const out = new Float32Array(images.length);
  const aug = getAugmentation(name);
  seeds.forEach((s, i) => aug.apply(images, i * N, out, i * N, shape, new RandomState(s)));
  return out;
}

describe('AugmentPool in-thread (as under ts-jest, or with workers: 0)', () => {
  const pool = new AugmentPool();
  afterAll(() => pool.close());

  it('has no workers here, and augments each image with its own seed', async () => {
    expect(pool.workers).toBe(0);
    const images = batch(9);
    const seeds = drawSeeds(new RandomState(1), 9);
    for (const name of ['cifar10', 'color', 'randaugment', 'svhn+randaugment']) {
      const r = await pool.augment({ images, shape, augment: name, seeds });
      expect(r.images).toBeInstanceOf(Float32Array);
      expect(Buffer.from(r.images.buffer).equals(Buffer.from(direct(name, images, seeds).buffer))).toBe(true);
    }
    const u8 = await pool.augment({ images, shape, augment: 'cutout', seeds, output: 'uint8' });
    const ref = new Uint8Array(images.length);
    seeds.forEach((s, i) => getAugmentation('cutout').applyU8(images, i * N, ref, i * N, shape, new RandomState(s)));
    expect(Buffer.from(u8.images.buffer).equals(Buffer.from(ref))).toBe(true);
  });

  it('draws seeds from the run generator in a fixed order', () => {
    expect(Array.from(drawSeeds(new RandomState(3), 4))).toEqual(Array.from(drawSeeds(new RandomState(3), 4)));
    expect(new Set(drawSeeds(new RandomState(3), 1000)).size).toBe(1000);
  });

  it('uses the CTAugment weights it is given, and reports probe policies', async () => {
    const images = batch(6);
    const seeds = drawSeeds(new RandomState(2), 6);
    const fresh = await pool.augment({ images, shape, augment: 'ctaugment', seeds, state: { ctaugment: new CTAugment().getState() } });
    const trained = new CTAugment();
    // every op fails in the lower half of its range
    const st = trained.getState();
    for (let i = 0; i < 300; i++) {
      for (const [op, params] of Object.entries(st.rates)) {
        for (let b = 0; b < 8; b++) trained.update([{ op, levels: params.map((r) => (b * 0.5) / r.length) }], 0);
      }
    }
    const adapted = await pool.augment({ images, shape, augment: 'ctaugment', seeds, state: { ctaugment: trained.getState() } });
    expect(Buffer.from(adapted.images.buffer).equals(Buffer.from(fresh.images.buffer))).toBe(false);

    const probe = await pool.augment({ images, shape, augment: 'ctaugment', seeds, probe: true, output: 'uint8' });
    expect(probe.policies).toHaveLength(6);
    // replaying: the probe policy then applied, no cutout
    for (let i = 0; i < 6; i++) {
      const cta = new CTAugment();
      const r = new RandomState(seeds[i]);
      const policy = cta.probePolicy(r);
      expect(probe.policies![i]).toEqual(policy);
      const img = cta.applyPolicyU8(images.subarray(i * N, (i + 1) * N), shape, policy, r);
      expect(Buffer.from(probe.images.subarray(i * N, (i + 1) * N)).equals(Buffer.from(img))).toBe(true);
    }
    await expect(pool.augment({ images, shape, augment: 'cifar10', seeds, probe: true })).rejects.toThrow(/probe needs a ctaugment/);
    await expect(pool.augment({ images, shape, augment: 'nope', seeds })).rejects.toThrow(/unknown augmentation 'nope'/);
  });

  it('prefetches: the next batch is requested before this one is used, in call order', async () => {
    let made = 0;
    const p = new Prefetcher(async () => made++, 2);
    expect(await p.next()).toBe(0);
    expect(made).toBe(3);
    expect(await p.next()).toBe(1);
    expect(await p.next()).toBe(2);
    expect(made).toBe(5);
  });
});

describe('AugmentPool on worker threads (compiled dist/)', () => {
  const dist = path.join(__dirname, '..', 'dist', 'src', 'data', 'augment-pool.js');

  it('gives the in-thread result for any number of workers', async () => {
    if (!fs.existsSync(dist)) throw new Error(`${dist} is missing: run \`npx tsc -p .\` (npm test does)`);
    const images = batch(11);
    const seeds = drawSeeds(new RandomState(5), 11);
    const script = `
      const { AugmentPool } = require(${JSON.stringify(dist)});
      (async () => {
        const images = Uint8Array.from(${JSON.stringify(Array.from(images))});
        const seeds = ${JSON.stringify(Array.from(seeds))};
        const out = {};
        for (const workers of [1, 2, 3]) {
          const pool = new AugmentPool({ workers });
          const a = await pool.augment({ images, shape: ${JSON.stringify(shape)}, augment: 'cifar10+randaugment', seeds });
          const b = await pool.augment({ images, shape: ${JSON.stringify(shape)}, augment: 'ctaugment', seeds, probe: true, output: 'uint8' });
          out[workers] = { n: pool.workers, a: Buffer.from(a.images.buffer).toString('base64'), b: Buffer.from(b.images.buffer).toString('base64'), p: b.policies };
          await pool.close();
        }
        process.stdout.write(JSON.stringify(out));
      })();`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    const pool = new AugmentPool({ workers: 0 });
    const a = await pool.augment({ images, shape, augment: 'cifar10+randaugment', seeds });
    const b = await pool.augment({ images, shape, augment: 'ctaugment', seeds, probe: true, output: 'uint8' });
    for (const w of ['1', '2', '3']) {
      expect(out[w].n).toBe(Number(w));
      expect(out[w].a).toBe(Buffer.from(a.images.buffer).toString('base64'));
      expect(out[w].b).toBe(Buffer.from(b.images.buffer).toString('base64'));
      expect(out[w].p).toEqual(b.policies);
    }
  });
});
