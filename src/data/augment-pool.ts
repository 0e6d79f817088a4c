import type { Rng } from '../random';
import { RandomState } from '../random';
import { ChainedAugmentation, getAugmentation } from './augment';
import { Augmentation, isStateful, SCALE } from './augment-base';
import { defaultWorkerCount, WorkerPool, workerScript } from './augment-workers';
import { CTAugment, CtaPolicy } from './ctaugment';
import type { ImageShape } from './image-ops';
import { imageLength } from './image-ops';

/**
 * Batch augmentation off the main thread, for the training loop.
 *
 *   const pool = new AugmentPool();                      // worker threads, one per core
 *   const seeds = drawSeeds(rng, batch);                 // on the main thread, from the run's generator
 *   const { images } = await pool.augment({ images: u8Batch, shape, augment: 'cifar10', seeds });
 *   // images: Float32Array, batch·H·W·C in [-1, 1], ready for tf.tensor4d
 *
 * Image i is augmented by `getAugmentation(augment).apply` with `new RandomState(seeds[i])`, so
 * the result depends only on the request, never on the number of workers or which one ran it;
 * with no workers (0, or where there are no compiled workers, as under ts-jest) the same function
 * runs in-thread. A batch is cut into one contiguous slice per worker and put back in order.
 * Requests may overlap: start the next batch's request before awaiting this one (see Prefetcher).
 *
 * CTAugment: pass `state: { ctaugment: cta.getState() }` (weights travel with each request, so a
 * prefetched batch uses the weights of when it was requested), and `probe: true` to draw probe
 * policies instead; the result then carries each image's policy for `cta.update(policy, proximity)`.
 */

export interface AugmentBatchRequest {
  /** The batch's source images, count·H·W·C uint8. */
  images: Uint8Array;
  shape: ImageShape;
  /** Augmentation name, or a '+' chain (getAugmentation). */
  augment: string;
  /** One seed (uint32) per image. */
  seeds: ArrayLike<number>;
  /** States of stateful parts by name, e.g. { ctaugment: cta.getState() }. */
  state?: Record<string, unknown>;
  /** 'float' ([-1, 1], the default) or 'uint8' (0..255). */
  output?: 'float' | 'uint8';
  /** CTAugment parts draw probe policies (uniform levels, no cutout) and report them. */
  probe?: boolean;
}

export interface AugmentBatchResult {
  images: Float32Array | Uint8Array;
  /** With `probe`: per image, the CTAugment policy applied. */
  policies?: CtaPolicy[];
}

/** One uint32 seed per image from the run's generator (numpy's randint(2**32) draws one 32-bit word). */
export function drawSeeds(rng: Rng, n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.randint(0, 2 ** 32);
  return out;
}

interface Task {
  images: ArrayBuffer;
  shape: ImageShape;
  augment: string;
  seeds: number[];
  state?: Record<string, unknown>;
  output: 'float' | 'uint8';
  probe: boolean;
}

interface Reply {
  images: ArrayBuffer;
  policies?: CtaPolicy[];
}

/** Augmentations by name, built once per thread; stateful parts get the request's state. */
export class AugmentationCache {
  private readonly byName = new Map<string, Augmentation>();

  get(name: string, state?: Record<string, unknown>): Augmentation {
    let a = this.byName.get(name);
    if (!a) this.byName.set(name, (a = getAugmentation(name)));
    const parts = a instanceof ChainedAugmentation ? a.parts : [a];
    for (const p of parts) if (isStateful(p) && state && p.name in state) p.setState(state[p.name]);
    return a;
  }
}

/** Does one task: the same whether in a worker or in-thread. */
export function runAugmentTask(t: Task, cache: AugmentationCache): Reply {
  const aug = cache.get(t.augment, t.state);
  const parts = aug instanceof ChainedAugmentation ? aug.parts : [aug];
  const n = imageLength(t.shape);
  const src = new Uint8Array(t.images);
  const count = t.seeds.length;
  const outF = t.output === 'float' ? new Float32Array(count * n) : null;
  const outU = t.output === 'uint8' ? new Uint8Array(count * n) : null;
  const policies: CtaPolicy[] | undefined = t.probe ? [] : undefined;
  // reseeding one generator equals a new one per image, without allocating its state every time
  const rng = new RandomState(0);
  for (let i = 0; i < count; i++) {
    rng.seed(t.seeds[i] >>> 0);
    if (!t.probe) {
      if (outF) aug.apply(src, i * n, outF, i * n, t.shape, rng);
      else aug.applyU8(src, i * n, outU!, i * n, t.shape, rng);
      continue;
    }
    let cur: Uint8Array = src.subarray(i * n, (i + 1) * n);
    const policy: CtaPolicy = [];
    for (const p of parts) {
      if (p instanceof CTAugment) {
        const pp = p.probePolicy(rng);
        cur = p.applyPolicyU8(cur, t.shape, pp, rng);
        policy.push(...pp);
      } else {
        const next = new Uint8Array(n);
        p.applyU8(cur, 0, next, 0, t.shape, rng);
        cur = next;
      }
    }
    policies!.push(policy);
    if (outF) for (let k = 0; k < n; k++) outF[i * n + k] = cur[k] * SCALE - 1;
    else outU!.set(cur, i * n);
  }
  return { images: (outF ?? outU)!.buffer as ArrayBuffer, policies };
}

export interface AugmentPoolOptions {
  /** Worker threads (default: one per core); 0 runs in-thread. */
  workers?: number;
}

export class AugmentPool {
  private readonly pool: WorkerPool<Task, Reply> | null;
  private readonly cache = new AugmentationCache();

  constructor(opts: AugmentPoolOptions = {}) {
    const script = workerScript(__filename, 'augment-pool-worker');
    const want = opts.workers ?? defaultWorkerCount();
    this.pool = want > 0 && script ? new WorkerPool<Task, Reply>(script, want) : null;
  }

  /** Worker threads in use; 0 when augmenting in-thread. */
  get workers(): number {
    return this.pool?.size ?? 0;
  }

  async augment(req: AugmentBatchRequest): Promise<AugmentBatchResult> {
    const n = imageLength(req.shape);
    const count = req.seeds.length;
    if (req.images.length < count * n) throw new Error(`augment: ${count} seeds but only ${Math.floor(req.images.length / n)} images`);
    getAugmentation(req.augment); // a bad name fails here, with the UserError listing valid ones
    if (req.probe && !req.augment.split('+').map((p) => p.trim()).includes('ctaugment')) {
      throw new Error(`augment: probe needs a ctaugment, not '${req.augment}'`);
    }
    const output = req.output ?? 'float';
    const probe = req.probe ?? false;
    const slices = this.pool ? Math.min(this.pool.size, count) : 1;
    const per = Math.ceil(count / Math.max(1, slices));
    const tasks: Task[] = [];
    for (let s = 0; s < count; s += per) {
      const e = Math.min(count, s + per);
      tasks.push({
        images: req.images.slice(s * n, e * n).buffer as ArrayBuffer,
        shape: req.shape,
        augment: req.augment,
        seeds: Array.from({ length: e - s }, (_, i) => req.seeds[s + i]),
        state: req.state,
        output,
        probe,
      });
    }
    const replies = await Promise.all(tasks.map((t) => (this.pool ? this.pool.run(t, [t.images]) : Promise.resolve(runAugmentTask(t, this.cache)))));
    const images = output === 'float' ? new Float32Array(count * n) : new Uint8Array(count * n);
    let o = 0;
    for (const r of replies) {
      const part = output === 'float' ? new Float32Array(r.images) : new Uint8Array(r.images);
      images.set(part, o);
      o += part.length;
    }
    return { images, policies: probe ? replies.flatMap((r) => r.policies ?? []) : undefined };
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}

/**
 * Keeps `depth` results of `produce` in flight: `next()` returns the oldest and starts another, so
 * the next batch is augmented while this one trains. `produce` runs on the calling thread in call
 * order, so whatever it draws from a generator is drawn in a fixed order.
 */
export class Prefetcher<T> {
  private readonly queue: Promise<T>[] = [];

  constructor(private readonly produce: () => Promise<T>, private readonly depth = 1) {}

  next(): Promise<T> {
    while (this.queue.length < this.depth + 1) {
      const p = this.produce();
      p.catch(() => undefined); // handled when its turn comes
      this.queue.push(p);
    }
    return this.queue.shift()!;
  }
}
