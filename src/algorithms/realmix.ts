import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { crossEntropy, stopGradient } from '../train/ops';
import { linearRamp, mixmatchForward, mixmatchTargets } from './mixmatch';
import type { Algorithm, HParamValue } from './types';

/**
 * RealMix (Nair et al. 2019): MixMatch plus training-signal annealing on the labelled loss and a
 * percentile out-of-distribution mask on the unlabelled loss (workflow-spec.md 3.4). On an
 * augmented-copies dataset (<name>_aug<N>) the unlabelled images are the precomputed copies, as
 * the original trains. Scalars and accuracy tags are RealMix's.
 */

export const TSA_SCHEDULES = ['none', 'linear_schedule', 'log_schedule', 'exp_schedule'] as const;
export type TsaSchedule = (typeof TSA_SCHEDULES)[number];

/** The TSA threshold at training progress r in [0, 1]: 1/K rising to 1 along the schedule. */
export function tsaThreshold(schedule: TsaSchedule, progress: number, nclass: number): number {
  const r = progress;
  let coeff: number;
  switch (schedule) {
    case 'linear_schedule':
      coeff = r;
      break;
    case 'exp_schedule':
      coeff = Math.exp(5 * (r - 1));
      break;
    case 'log_schedule':
      coeff = 1 - Math.exp(-5 * r);
      break;
    case 'none':
      return 1;
  }
  return coeff * (1 - 1 / nclass) + 1 / nclass;
}

/**
 * Which labelled rows stay in the loss (1) and which are dropped (0) under TSA. Both inputs must
 * carry no gradient.
 *
 * Intended rule (default): a row with mixed label y stays while, for every class c its label
 * holds (y_c > 0), the model's probability p_c is still below thr * y_c; with a one-hot label
 * that is UDA's rule, p_label < thr.
 * compat (the original code): thresholds thr * logits_c instead of thr * y_c, and the row stays
 * when any class has p_c * [y_c > 0] below its threshold.
 */
export function tsaKeep(logitsX: tf.Tensor2D, yX: tf.Tensor2D, thr: number, compat: boolean): tf.Tensor1D {
  return tf.tidy(() => {
    const probs = tf.softmax(logitsX);
    const support = tf.cast(tf.greater(yX, 0), 'float32');
    if (compat) {
      const below = tf.cast(tf.less(tf.mul(probs, support), tf.mul(logitsX, thr)), 'float32');
      return tf.max(below, 1) as tf.Tensor1D;
    }
    const below = tf.cast(tf.less(probs, tf.mul(yX, thr)), 'float32');
    // classes outside the label do not count: treat them as satisfied
    const ok = tf.maximum(below, tf.sub(1, support));
    return tf.min(ok, 1) as tf.Tensor1D;
  });
}

/** RealMix's percentile threshold: the value at index floor(N * r) of the ascending sort of m. */
export function percentileThreshold(m: tf.Tensor1D, r: number): tf.Scalar {
  return tf.tidy(() => {
    const n = m.shape[0];
    const j = Math.floor(n * r);
    const descending = tf.topk(m, n, true).values;
    return tf.reshape(tf.slice(descending, n - 1 - j, 1), []) as tf.Scalar;
  });
}

function validate(hp: Record<string, HParamValue>): void {
  const r = Number(hp.percent_mask);
  if (r >= 1) throw new UserError(`percent_mask must be below 1 (the fraction of unlabelled rows masked out; <= 0 turns the mask off), got ${r}`);
}

export const realmix: Algorithm = {
  name: 'realmix',
  className: 'RealMix',
  description: 'RealMix: MixMatch with training-signal annealing and a percentile out-of-distribution mask (Nair et al. 2019)',
  tagStyle: 'realmix',
  augmentationInName: true,
  hparams: [
    { name: 'beta', type: 'float', default: 0.75, help: 'MixUp Beta(beta, beta) parameter' },
    { name: 'w_match', type: 'float', default: 75, help: 'weight of the unlabelled loss (lambda_U) after the ramp' },
    { name: 'warmup_kimg', type: 'int', default: 1024, help: 'kimg over which w_match ramps up linearly', inName: false },
    { name: 'T', type: 'float', default: 0.5, help: 'sharpening temperature', inName: false },
    { name: 'nu', type: 'int', default: 2, help: 'augmented views of each unlabelled image (K)', inName: false },
    {
      name: 'tsa',
      type: 'string',
      default: 'none',
      choices: [...TSA_SCHEDULES],
      help:
        'training-signal annealing of the labelled loss: a labelled row leaves the loss once the model reaches thr times its mixed label ' +
        'on a class of that label, thr rising from 1/K to 1 over the run along the schedule',
    },
    {
      name: 'tsa_compat',
      type: 'bool',
      default: false,
      inName: 'if-changed',
      help:
        'TSA as the original code computes it: the threshold multiplies the raw logits (not the labels) and a row stays when any class ' +
        'is below it, which keeps nearly every row',
    },
    {
      name: 'percent_mask',
      type: 'float',
      default: -1,
      runKey: 'ood_mask',
      help: 'out-of-distribution mask: drop this fraction of unlabelled rows, those with the lowest top probability (<= 0: off)',
    },
  ],
  views: (hp) => Number(hp.nu),
  validate,
  targets: mixmatchTargets,
  loss(ctx, inputs, targets) {
    const { logitsX, logitsU, yX, yU } = mixmatchForward(ctx, inputs, targets);
    const k = ctx.nclass;
    const ceX = crossEntropy(yX, logitsX);
    const tsa = String(ctx.hp.tsa) as TsaSchedule;
    let xe: tf.Scalar;
    if (tsa === 'none') {
      xe = tf.mean(ceX) as tf.Scalar;
    } else {
      const thr = tsaThreshold(tsa, ctx.imagesSeen / ctx.totalImages, k);
      const keep = tsaKeep(stopGradient(logitsX), yX, thr, Boolean(ctx.hp.tsa_compat));
      xe = tf.div(tf.sum(tf.mul(ceX, keep)), tf.maximum(tf.sum(keep), 1)) as tf.Scalar;
    }
    const squared = tf.square(tf.sub(yU, tf.softmax(logitsU)));
    const top = tf.max(tf.softmax(stopGradient(logitsU)), 1) as tf.Tensor1D;
    const scalars: Record<string, tf.Scalar> = {
      'losses/min_unsup_prob': tf.min(top) as tf.Scalar,
      'losses/mean_unsup_prob': tf.mean(top) as tf.Scalar,
      'losses/max_unsup_prob': tf.max(top) as tf.Scalar,
    };
    const r = Number(ctx.hp.percent_mask);
    let l2u: tf.Scalar;
    if (r > 0) {
      const t = percentileThreshold(top, r);
      const mask = tf.cast(tf.greater(top, t), 'float32') as tf.Tensor1D;
      l2u = tf.div(tf.sum(tf.mul(squared, tf.expandDims(mask, 1))), tf.maximum(tf.mul(tf.sum(mask), k), 1)) as tf.Scalar;
      scalars['losses/high_prob_ratio'] = tf.mean(mask) as tf.Scalar;
      scalars['losses/percent_confidence_mask'] = t;
    } else {
      l2u = tf.mean(squared) as tf.Scalar;
    }
    const w = Number(ctx.hp.w_match) * linearRamp(ctx.imagesSeen, Number(ctx.hp.warmup_kimg) * 1024);
    const loss = tf.add(xe, tf.mul(l2u, w)) as tf.Scalar;
    return { loss, scalars: { 'losses/xe': xe, 'losses/l2u': l2u, 'losses/overall': loss, ...scalars } };
  },
};
