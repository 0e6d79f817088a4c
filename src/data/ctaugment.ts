import type { Rng } from '../random';
import { StatefulAugmentation, u8ToFloat } from './augment-base';
import { CTAUGMENT_OPS, cutoutSquare, getOp } from './augment-ops';
import type { ImageShape } from './image-ops';

/**
 * CTAugment (ReMixMatch, used by FixMatch): each operation's magnitude range is cut into bins, each
 * bin with a weight (its "rate") that training keeps adapting. A training policy draws `depth`
 * operations uniformly and, for each of their parameters, a bin with probability proportional to
 * its weight (bins whose weight, after adding 1 − decay and dividing by the largest, falls below
 * `threshold` are never drawn) and a uniform level inside that bin. A probe policy draws levels
 * uniformly. After the model classifies a probe-augmented labelled image, `update(policy,
 * proximity)` moves each used bin's weight towards proximity = 1 − ½·|p − onehot(label)|₁:
 * weight ← decay·weight + (1 − decay)·proximity.
 *
 * The training augmentation is the drawn policy followed by Cutout at full level, as FixMatch's
 * code applies it. Weights are plain numbers: getState()/setState() put them in a checkpoint.
 */

export interface CtaOpChoice {
  op: string;
  /** One level in [0, 1) per parameter of the op. */
  levels: number[];
}

export type CtaPolicy = CtaOpChoice[];

export interface CtaState {
  version: 1;
  depth: number;
  threshold: number;
  decay: number;
  /** Per op, per parameter, the bin weights. */
  rates: Record<string, number[][]>;
}

export interface CtaOptions {
  /** Operations per policy (FixMatch: 2). */
  depth?: number;
  /** Relative weight below which a bin is not drawn (FixMatch paper: 0.8; its code: 0.85). */
  threshold?: number;
  /** Weight update decay (0.99). */
  decay?: number;
  /** Cutout after the policy in apply/applyU8 (FixMatch: yes). */
  cutout?: boolean;
}

/** The probe's closeness to the label: 1 − ½·Σ|p_k − [k = label]|, in [0, 1]. */
export function ctaProximity(probs: ArrayLike<number>, label: number): number {
  let l1 = 0;
  for (let k = 0; k < probs.length; k++) l1 += Math.abs(probs[k] - (k === label ? 1 : 0));
  return 1 - 0.5 * l1;
}

export class CTAugment implements StatefulAugmentation {
  readonly name = 'ctaugment';
  readonly description: string;
  private depth: number;
  private threshold: number;
  private decay: number;
  private readonly cutout: boolean;
  private rates = new Map<string, Float64Array[]>();

  constructor(opts: CtaOptions = {}) {
    this.depth = opts.depth ?? 2;
    this.threshold = opts.threshold ?? 0.8;
    this.decay = opts.decay ?? 0.99;
    this.cutout = opts.cutout ?? true;
    this.description = `CTAugment (FixMatch): ${this.depth} ops at adaptively weighted magnitudes${this.cutout ? ', then Cutout' : ''}`;
    for (const name of CTAUGMENT_OPS) this.rates.set(name, getOp(name).bins.map((n) => new Float64Array(n).fill(1)));
  }

  /** Draw probabilities of one parameter's bins (not normalised). */
  binWeights(rate: ArrayLike<number>): Float64Array {
    const p = Float64Array.from(rate, (r) => r + (1 - this.decay));
    let max = 0;
    for (const v of p) max = Math.max(max, v);
    for (let i = 0; i < p.length; i++) {
      p[i] /= max;
      if (p[i] < this.threshold) p[i] = 0;
    }
    return p;
  }

  private pickOp(rng: Rng): string {
    return CTAUGMENT_OPS[rng.randint(0, CTAUGMENT_OPS.length)];
  }

  /** A training policy: bins drawn by their weights. */
  samplePolicy(rng: Rng): CtaPolicy {
    const policy: CtaPolicy = [];
    for (let d = 0; d < this.depth; d++) {
      const op = this.pickOp(rng);
      const levels = this.rates.get(op)!.map((rate) => {
        const w = this.binWeights(rate);
        let total = 0;
        for (const v of w) total += v;
        let u = rng.randomSample() * total;
        let bin = 0;
        while (bin < w.length - 1 && u >= w[bin]) u -= w[bin++];
        // the top bin may have been passed over by rounding; never land on a zero-weight bin
        while (w[bin] === 0 && bin > 0) bin--;
        return (bin + rng.randomSample()) / w.length;
      });
      policy.push({ op, levels });
    }
    return policy;
  }

  /** A probe policy: levels uniform over each whole range, to learn which bins work. */
  probePolicy(rng: Rng): CtaPolicy {
    const policy: CtaPolicy = [];
    for (let d = 0; d < this.depth; d++) {
      const op = this.pickOp(rng);
      policy.push({ op, levels: this.rates.get(op)!.map(() => rng.randomSample()) });
    }
    return policy;
  }

  /** Applies a policy's ops (no cutout); `rng` serves ops with their own draws (Cutout's position). */
  applyPolicyU8(img: Uint8Array, shape: ImageShape, policy: CtaPolicy, rng: Rng): Uint8Array {
    let out = img;
    for (const { op, levels } of policy) out = getOp(op).apply(out, shape, levels, 'ctaugment', rng);
    return out === img ? img.slice() : out;
  }

  /** The training augmentation of one image: a sampled policy, then Cutout. */
  augmentU8(img: Uint8Array, shape: ImageShape, rng: Rng): Uint8Array {
    let out = this.applyPolicyU8(img, shape, this.samplePolicy(rng), rng);
    if (this.cutout) out = cutoutSquare(out, shape, 1, rng);
    return out;
  }

  /** Moves the weights of the bins a probe policy used towards `proximity` (in [0, 1]). */
  update(policy: CtaPolicy, proximity: number): void {
    if (!Number.isFinite(proximity)) throw new RangeError(`CTAugment.update: proximity must be a number, got ${proximity}`);
    for (const { op, levels } of policy) {
      const rates = this.rates.get(op);
      if (!rates) throw new Error(`CTAugment.update: unknown op '${op}'`);
      levels.forEach((v, i) => {
        const rate = rates[i];
        const bin = Math.min(rate.length - 1, Math.max(0, Math.floor(v * rate.length * 0.999)));
        rate[bin] = rate[bin] * this.decay + proximity * (1 - this.decay);
      });
    }
  }

  apply(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, shape: ImageShape, rng: Rng): void {
    u8ToFloat(this.augmentU8(src.subarray(srcOffset, srcOffset + shape.height * shape.width * shape.channels), shape, rng), dst, dstOffset);
  }

  applyU8(src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number, shape: ImageShape, rng: Rng): void {
    dst.set(this.augmentU8(src.subarray(srcOffset, srcOffset + shape.height * shape.width * shape.channels), shape, rng), dstOffset);
  }

  getState(): CtaState {
    const rates: Record<string, number[][]> = {};
    for (const [op, r] of this.rates) rates[op] = r.map((a) => Array.from(a));
    return { version: 1, depth: this.depth, threshold: this.threshold, decay: this.decay, rates };
  }

  setState(state: unknown): void {
    const s = state as Partial<CtaState> | null;
    const bad = (why: string): Error => new Error(`CTAugment state is invalid: ${why}`);
    if (!s || typeof s !== 'object' || s.version !== 1) throw bad('expected an object with version 1');
    if (!Number.isInteger(s.depth) || s.depth! < 1) throw bad('depth must be a positive integer');
    for (const k of ['threshold', 'decay'] as const) {
      if (typeof s[k] !== 'number' || !(s[k]! >= 0 && s[k]! <= 1)) throw bad(`${k} must be a number in [0, 1]`);
    }
    if (!s.rates || typeof s.rates !== 'object') throw bad('rates missing');
    const next = new Map<string, Float64Array[]>();
    for (const name of CTAUGMENT_OPS) {
      const want = getOp(name).bins;
      const got = s.rates[name];
      if (!Array.isArray(got) || got.length !== want.length) throw bad(`op ${name} needs ${want.length} parameter(s)`);
      next.set(
        name,
        got.map((r, i) => {
          if (!Array.isArray(r) || r.length !== want[i] || !r.every((v) => typeof v === 'number' && Number.isFinite(v))) {
            throw bad(`op ${name} parameter ${i} needs ${want[i]} finite weights`);
          }
          return Float64Array.from(r);
        }),
      );
    }
    const extra = Object.keys(s.rates).filter((k) => !CTAUGMENT_OPS.includes(k));
    if (extra.length > 0) throw bad(`unknown op(s) ${extra.join(', ')}`);
    this.depth = s.depth!;
    this.threshold = s.threshold!;
    this.decay = s.decay!;
    this.rates = next;
  }
}
