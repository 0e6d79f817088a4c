import * as tf from '@tensorflow/tfjs';
import { stopGradient } from '../models/layers';
import { WARMUP_POS, labelledCrossEntropy, smoothingUnused, warmup } from './pi-model';
import type { Algorithm, StepContext } from './types';

/**
 * Virtual Adversarial Training (Miyato et al. 2018) as the Google MixMatch code trains it (vat.py
 * and third_party/vat_utils.py, workflow-spec.md 4.3). The perturbation comes from one power
 * iteration: d ~ N(0, I), normalised (by its max-abs value, then its L2 norm, per image) and scaled
 * by xi; the gradient with respect to d of the mean KL(p(u) || p(u + d)) is normalised the same way
 * and scaled by vat_eps. It is computed in `targets`, outside the gradient tape. The loss is then
 * CE + warmup * vat * KL(p(u + r_adv) || p(u)) + entmin_weight * entropy(p(u)): the KL is taken
 * from the perturbed (student) prediction to the stopped clean one, as the original's argument
 * order gives, and the entropy term is not ramped. `smoothing` is only in the run name.
 */

/** Per image: divide by (1e-12 + max |d|), then by sqrt(1e-6 + sum d^2), as vat_utils does. */
export function normalizePerturbation(d: tf.Tensor4D): tf.Tensor4D {
  const byMax = tf.div(d, tf.add(tf.max(tf.abs(d), [1, 2, 3], true), 1e-12));
  return tf.div(byMax, tf.sqrt(tf.add(tf.sum(tf.square(byMax), [1, 2, 3], true), 1e-6))) as tf.Tensor4D;
}

/** KL(softmax(q) || softmax(p)) per row. */
export function klFromLogits(qLogits: tf.Tensor2D, pLogits: tf.Tensor2D): tf.Tensor1D {
  const logq = tf.logSoftmax(qLogits);
  return tf.sum(tf.mul(tf.exp(logq), tf.sub(logq, tf.logSoftmax(pLogits))), 1) as tf.Tensor1D;
}

/** Entropy of softmax(logits) per row. */
export function entropyFromLogits(logits: tf.Tensor2D): tf.Tensor1D {
  const logp = tf.logSoftmax(logits);
  return tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), 1)) as tf.Tensor1D;
}

/** d ~ N(0, I) from the run's generator, so a seed fixes the perturbation on every backend. */
function gaussianLike(ctx: StepContext, shape: number[]): tf.Tensor4D {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = ctx.rng.standardNormal();
  return tf.tensor4d(v, shape as [number, number, number, number]);
}

export function adversarialPerturbation(ctx: StepContext, u: tf.Tensor4D, logits: tf.Tensor2D, eps: number, xi: number): tf.Tensor4D {
  const d = tf.mul(normalizePerturbation(gaussianLike(ctx, u.shape)), xi) as tf.Tensor4D;
  const meanKl = (dd: tf.Tensor) => tf.mean(klFromLogits(logits, ctx.forward(tf.add(u, dd) as tf.Tensor4D, { training: true })));
  const grad = tf.grad(meanKl)(d) as tf.Tensor4D;
  return tf.mul(normalizePerturbation(grad), eps) as tf.Tensor4D;
}

export const vat: Algorithm = {
  name: 'vat',
  className: 'VAT',
  description: 'Virtual Adversarial Training with entropy minimisation (Miyato et al. 2018)',
  tagStyle: 'google',
  hparams: [
    { name: 'vat', type: 'float', default: 0.3, help: 'weight of the VAT loss after the ramp' },
    { name: 'vat_eps', type: 'float', default: 6, help: 'L2 norm of the adversarial perturbation (epsilon)' },
    { name: 'entmin_weight', type: 'float', default: 0.06, help: 'weight of the entropy-minimisation loss (not ramped)' },
    WARMUP_POS,
    smoothingUnused(0.1),
    { name: 'xi', type: 'float', default: 1e-6, help: 'size of the probe perturbation of the power iteration', inName: false },
  ],
  views: () => 1,
  targets(ctx, inputs) {
    const u = inputs.u[0];
    const logits = ctx.forward(u, { training: true });
    return { rAdv: adversarialPerturbation(ctx, u, logits, Number(ctx.hp.vat_eps), Number(ctx.hp.xi)) };
  },
  loss(ctx, inputs, targets) {
    const xe = labelledCrossEntropy(ctx, inputs);
    const u = inputs.u[0];
    const logitsU = ctx.forward(u, { training: true });
    const student = ctx.forward(tf.add(u, targets.rAdv) as tf.Tensor4D, { training: true });
    const lossVat = tf.mean(klFromLogits(student, stopGradient(logitsU))) as tf.Scalar;
    const entmin = tf.mean(entropyFromLogits(logitsU)) as tf.Scalar;
    const loss = tf.addN([xe, tf.mul(lossVat, warmup(ctx) * Number(ctx.hp.vat)), tf.mul(entmin, Number(ctx.hp.entmin_weight))]) as tf.Scalar;
    return { loss, scalars: { 'losses/xe': xe, 'losses/vat': lossVat, 'losses/entmin': entmin } };
  },
};
