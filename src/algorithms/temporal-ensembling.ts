import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { crossEntropy } from '../train/ops';
import type { Algorithm, HParamValue, Inputs, SampleState, StepContext } from './types';

/**
 * Temporal Ensembling (Laine & Aila 2017; seeds/003): every image keeps an exponential moving
 * average Z of the network's past predictions on it (momentum alpha); the bias-corrected
 * Z / (1 - alpha^t), after t visits, is the target of a squared-error consistency loss on all rows
 * of the batch, weighted by w_max * exp(-5 (1 - t)^2) as the run ramps up; the labelled rows also
 * get cross-entropy. The ensemble is updated per image each time the image is seen (the original
 * updates all images once per epoch, a notion this loop does not have). An image not yet seen has
 * no target and is left out of the consistency term.
 */

/** The Gaussian ramp-up exp(-5 (1 - t)^2), t = progress / warmup clipped to [0, 1]. */
export function gaussianRampUp(progress: number, warmup: number): number {
  if (warmup <= 0) return 1;
  const t = Math.min(Math.max(progress / warmup, 0), 1);
  return Math.exp(-5 * (1 - t) * (1 - t));
}

/** The rows of a batch in the per-sample state: the labelled rows first, then the unlabelled ones. */
function rowSlots(state: SampleState, inputs: Inputs): Array<{ data: Float32Array; base: number }> {
  const rows: Array<{ data: Float32Array; base: number }> = [];
  for (const i of inputs.labeledIndex ?? []) rows.push({ data: state.labeled, base: i * state.width });
  for (const i of inputs.unlabeledIndex ?? []) rows.push({ data: state.unlabeled, base: i * state.width });
  return rows;
}

/**
 * Targets Z / (1 - alpha^t) of the batch's rows and which rows have one (t > 0). State layout per
 * image: nclass ensemble values, then the visit count t.
 */
export function ensembleTargets(state: SampleState, inputs: Inputs, nclass: number, alpha: number): { target: Float32Array; seen: Float32Array } {
  const rows = rowSlots(state, inputs);
  const target = new Float32Array(rows.length * nclass);
  const seen = new Float32Array(rows.length);
  rows.forEach(({ data, base }, r) => {
    const t = data[base + nclass];
    if (t <= 0) return;
    seen[r] = 1;
    const correction = 1 - Math.pow(alpha, t);
    for (let c = 0; c < nclass; c++) target[r * nclass + c] = data[base + c] / correction;
  });
  return { target, seen };
}

/** Z <- alpha Z + (1 - alpha) p and t <- t + 1 for every row of the batch, in row order. */
export function accumulateEnsemble(state: SampleState, inputs: Inputs, probs: Float32Array, nclass: number, alpha: number): void {
  rowSlots(state, inputs).forEach(({ data, base }, r) => {
    for (let c = 0; c < nclass; c++) data[base + c] = alpha * data[base + c] + (1 - alpha) * probs[r * nclass + c];
    data[base + nclass] += 1;
  });
}

function validate(hp: Record<string, HParamValue>): void {
  const a = Number(hp.alpha);
  if (!(a >= 0 && a < 1)) throw new UserError(`alpha (the ensemble momentum) must be in [0, 1), got ${a}`);
}

function stateOf(ctx: StepContext): SampleState {
  if (!ctx.sampleState) throw new Error('temporal_ensembling needs the per-sample state the loop keeps for it');
  return ctx.sampleState;
}

export const temporalEnsembling: Algorithm = {
  name: 'temporal_ensembling',
  className: 'TemporalEnsembling',
  description: 'Temporal Ensembling: per-image moving averages of past predictions as consistency targets (Laine & Aila 2017)',
  tagStyle: 'google',
  hparams: [
    { name: 'alpha', type: 'float', default: 0.6, help: 'momentum of the per-image ensemble of past predictions' },
    { name: 'w_max', type: 'float', default: 30, help: 'weight of the consistency loss after the ramp-up' },
    { name: 'warmup_pos', type: 'float', default: 0.27, help: 'fraction of train_kimg over which the consistency weight ramps up along exp(-5(1-t)^2) (80 of 300 epochs in the source)' },
  ],
  views: () => 1,
  sampleStateWidth: (nclass) => nclass + 1,
  validate,
  targets(ctx, inputs) {
    const { target, seen } = ensembleTargets(stateOf(ctx), inputs, ctx.nclass, Number(ctx.hp.alpha));
    return { target: tf.tensor2d(target, [seen.length, ctx.nclass]), seen: tf.tensor1d(seen) };
  },
  loss(ctx, inputs, targets) {
    const b = inputs.x.shape[0];
    const logits = ctx.forward(tf.concat([inputs.x, ...inputs.u], 0) as tf.Tensor4D, { training: true, updateBn: true });
    const probs = tf.softmax(logits);
    const onehot = tf.oneHot(inputs.labels, ctx.nclass).toFloat() as tf.Tensor2D;
    const xe = tf.mean(crossEntropy(onehot, tf.slice(logits, 0, b) as tf.Tensor2D)) as tf.Scalar;
    // mean over every row and class, as the source's MSE; rows without a target contribute zero
    const diff = tf.mul(tf.sub(probs, targets.target), tf.expandDims(targets.seen, 1));
    const mse = tf.mean(tf.square(diff)) as tf.Scalar;
    const w = Number(ctx.hp.w_max) * gaussianRampUp(ctx.imagesSeen, Number(ctx.hp.warmup_pos) * ctx.totalImages);
    const loss = tf.add(xe, tf.mul(mse, w)) as tf.Scalar;
    return { loss, scalars: { 'losses/xe': xe, 'losses/mse': mse }, outputs: { probs } };
  },
  update(ctx, inputs, outputs) {
    accumulateEnsemble(stateOf(ctx), inputs, outputs.probs, ctx.nclass, Number(ctx.hp.alpha));
  },
};
