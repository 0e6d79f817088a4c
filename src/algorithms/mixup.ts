import * as tf from '@tensorflow/tfjs';
import { meanCrossEntropy } from './pi-model';
import type { Algorithm, StepContext } from './types';

/**
 * Semi-supervised MixUp as the Google MixMatch code adapts it (mixup.py, workflow-spec.md 4.3):
 * the labelled batch is mixed with itself reversed, one lambda' = max(lambda, 1 - lambda) per row,
 * lambda ~ Beta(beta, beta); the raw network's softmax on the unlabelled batch (no sharpening, no
 * gradient) is its soft label, and the unlabelled batch is mixed the same way with fresh lambdas.
 * Loss = cross-entropy on mixed labelled rows + cross-entropy on mixed unlabelled rows, unweighted.
 */

/** lambda' = max(lambda, 1 - lambda), lambda ~ Beta(beta, beta), one per row, from the run's generator. */
export function mixWeights(ctx: StepContext, n: number, beta: number): Float32Array {
  const lam = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const l = ctx.rng.beta(beta, beta);
    lam[i] = Math.max(l, 1 - l);
  }
  return lam;
}

/** Mixes every row with the row at the mirrored position (the originals' x[::-1]). */
export function mixWithReversed<T extends tf.Tensor>(x: T, lam: Float32Array): T {
  const shape = [x.shape[0], ...x.shape.slice(1).map(() => 1)];
  const l = tf.tensor(lam, shape);
  return tf.add(tf.mul(x, l), tf.mul(tf.reverse(x, 0), tf.sub(1, l))) as T;
}

/** The originals' MixUp augment(): images and labels mixed with the reversed batch by the same lambdas. */
export function mixupReversed(ctx: StepContext, x: tf.Tensor4D, y: tf.Tensor2D, beta: number): { x: tf.Tensor4D; y: tf.Tensor2D } {
  const lam = mixWeights(ctx, x.shape[0], beta);
  return { x: mixWithReversed(x, lam), y: mixWithReversed(y, lam) };
}

export const mixupSsl: Algorithm = {
  name: 'mixup',
  className: 'Mixup',
  description: 'MixUp for semi-supervised learning: unsharpened guesses on unlabelled images, each batch mixed with itself reversed',
  tagStyle: 'google',
  hparams: [{ name: 'beta', type: 'float', default: 0.5, help: 'MixUp Beta(beta, beta) parameter' }],
  views: () => 1,
  targets(ctx, inputs) {
    const beta = Number(ctx.hp.beta);
    const onehot = tf.oneHot(inputs.labels, ctx.nclass).toFloat() as tf.Tensor2D;
    const x = mixupReversed(ctx, inputs.x, onehot, beta);
    // the guess is a training-mode pass whose batch-norm statistics are discarded
    const guess = tf.softmax(ctx.forward(inputs.u[0], { training: true }));
    const u = mixupReversed(ctx, inputs.u[0], guess, beta);
    return { mixedX: x.x, labelsX: x.y, mixedU: u.x, labelsU: u.y };
  },
  loss(ctx, _inputs, t) {
    const logitsX = ctx.forward(t.mixedX as tf.Tensor4D, { training: true, updateBn: true });
    const logitsU = ctx.forward(t.mixedU as tf.Tensor4D, { training: true });
    const xe = meanCrossEntropy(t.labelsX as tf.Tensor2D, logitsX);
    const xeu = meanCrossEntropy(t.labelsU as tf.Tensor2D, logitsU);
    return { loss: tf.add(xe, xeu) as tf.Scalar, scalars: { 'losses/xe': xe, 'losses/xeu': xeu } };
  },
};
