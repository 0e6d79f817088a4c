import * as tf from '@tensorflow/tfjs';
import { crossEntropy } from '../train/ops';
import type { Algorithm, Inputs, StepContext } from './types';

/**
 * MixMatch (Berthelot et al. 2019) as the Google code trains it (workflow-spec.md 3.3): K views
 * of the unlabelled batch, sharpened averaged guesses, MixUp of labelled and unlabelled rows with
 * lambda' = max(lambda, 1 - lambda), the batch-norm interleave, cross-entropy on labelled rows and
 * the squared error on unlabelled rows, with w_match ramped linearly over warmup_kimg.
 */

export function sharpen(p: tf.Tensor2D, T: number): tf.Tensor2D {
  const q = tf.pow(p, 1 / T);
  return tf.div(q, tf.sum(q, 1, true));
}

/** Offsets of the three interleave groups for a batch of b: floor(b/3) each, remainder to the last groups. */
export function interleaveOffsets(batch: number, nu: number): number[] {
  const groups = nu + 1;
  const sizes = new Array(groups).fill(Math.floor(batch / groups));
  const remainder = batch - sizes.reduce((a, b) => a + b, 0);
  for (let x = 0; x < remainder; x++) sizes[sizes.length - 1 - x]++;
  const offsets = [0];
  for (const s of sizes) offsets.push(offsets[offsets.length - 1] + s);
  return offsets;
}

/** Swaps group i of batch 0 with group i of batch i, so every forward batch mixes labelled and unlabelled rows. */
export function interleave<T extends tf.Tensor>(xs: T[], batch: number): T[] {
  const offsets = interleaveOffsets(batch, xs.length - 1);
  const parts = xs.map((x) => {
    const out: T[] = [];
    for (let g = 0; g + 1 < offsets.length; g++) out.push(tf.slice(x, offsets[g], offsets[g + 1] - offsets[g]) as T);
    return out;
  });
  for (let i = 1; i < xs.length; i++) {
    const t = parts[0][i];
    parts[0][i] = parts[i][i];
    parts[i][i] = t;
  }
  return parts.map((p) => tf.concat(p, 0) as T);
}

/** Mixes rows with a permutation and per-row lambda' (drawn from the run's generator). */
export function mixup(ctx: StepContext, x: tf.Tensor4D, y: tf.Tensor2D, beta: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const n = x.shape[0];
  const lam = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const l = ctx.rng.beta(beta, beta);
    lam[i] = Math.max(l, 1 - l);
  }
  const perm = Int32Array.from(ctx.rng.permutation(n));
  const permT = tf.tensor1d(perm, 'int32');
  const lx = tf.tensor4d(lam, [n, 1, 1, 1]);
  const ly = tf.tensor2d(lam, [n, 1]);
  const mx = tf.add(tf.mul(x, lx), tf.mul(tf.gather(x, permT), tf.sub(1, lx))) as tf.Tensor4D;
  const my = tf.add(tf.mul(y, ly), tf.mul(tf.gather(y, permT), tf.sub(1, ly))) as tf.Tensor2D;
  return { x: mx, y: my };
}

export function linearRamp(imagesSeen: number, warmupImages: number): number {
  if (warmupImages <= 0) return 1;
  return Math.min(Math.max(imagesSeen / warmupImages, 0), 1);
}

/** Shared by MixMatch and RealMix: the guess, the MixUp and the interleaved forward passes. */
export function mixmatchForward(ctx: StepContext, inputs: Inputs, targets: Record<string, tf.Tensor>) {
  const b = inputs.x.shape[0];
  const nu = inputs.u.length;
  const mixedX = targets.mixedX as tf.Tensor4D;
  const mixedY = targets.mixedY as tf.Tensor2D;
  const chunks = tf.split(mixedX, nu + 1, 0) as tf.Tensor4D[];
  const inter = interleave(chunks, b);
  const logits = inter.map((c, i) => ctx.forward(c, { training: true, updateBn: i === 0 }));
  const restored = interleave(logits, b);
  const logitsX = restored[0];
  const logitsU = tf.concat(restored.slice(1), 0) as tf.Tensor2D;
  const yX = tf.slice(mixedY, 0, b) as tf.Tensor2D;
  const yU = tf.slice(mixedY, b) as tf.Tensor2D;
  return { logitsX, logitsU, yX, yU };
}

export function mixmatchTargets(ctx: StepContext, inputs: Inputs): Record<string, tf.Tensor> {
  const T = Number(ctx.hp.T ?? 0.5);
  const beta = Number(ctx.hp.beta);
  // guesses come from training-mode passes whose batch-norm updates are discarded
  const probs = inputs.u.map((u) => tf.softmax(ctx.forward(u, { training: true })));
  const p = tf.div(tf.addN(probs), probs.length) as tf.Tensor2D;
  const q = sharpen(p, T);
  const onehot = tf.oneHot(inputs.labels, ctx.nclass).toFloat() as tf.Tensor2D;
  const allX = tf.concat([inputs.x, ...inputs.u], 0) as tf.Tensor4D;
  const allY = tf.concat([onehot, ...inputs.u.map(() => q)], 0) as tf.Tensor2D;
  const mixed = mixup(ctx, allX, allY, beta);
  return { mixedX: mixed.x, mixedY: mixed.y, guess: q };
}

export const mixmatch: Algorithm = {
  name: 'mixmatch',
  className: 'MixMatch',
  description: 'MixMatch: sharpened guesses over K views, MixUp, interleaved batch norm (Berthelot et al. 2019)',
  tagStyle: 'google',
  hparams: [
    { name: 'beta', type: 'float', default: 0.5, help: 'MixUp Beta(beta, beta) parameter' },
    { name: 'w_match', type: 'float', default: 100, help: 'weight of the unlabelled loss (lambda_U) after the ramp' },
    { name: 'warmup_kimg', type: 'int', default: 1024, help: 'kimg over which w_match ramps up linearly', inName: false },
    { name: 'T', type: 'float', default: 0.5, help: 'sharpening temperature', inName: false },
    { name: 'nu', type: 'int', default: 2, help: 'augmented views of each unlabelled image (K)', inName: false },
  ],
  views: (hp) => Number(hp.nu),
  targets: mixmatchTargets,
  loss(ctx, inputs, targets) {
    const { logitsX, logitsU, yX, yU } = mixmatchForward(ctx, inputs, targets);
    const xe = tf.mean(crossEntropy(yX, logitsX)) as tf.Scalar;
    const l2u = tf.mean(tf.square(tf.sub(yU, tf.softmax(logitsU)))) as tf.Scalar;
    const w = Number(ctx.hp.w_match) * linearRamp(ctx.imagesSeen, Number(ctx.hp.warmup_kimg) * 1024);
    const loss = tf.add(xe, tf.mul(l2u, w)) as tf.Scalar;
    return { loss, scalars: { 'losses/xe': xe, 'losses/l2u': l2u } };
  },
};
