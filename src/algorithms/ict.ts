import * as tf from '@tensorflow/tfjs';
import { mixWeights, mixWithReversed } from './mixup';
import { WARMUP_POS, labelledCrossEntropy, softmaxMse, warmup } from './pi-model';
import type { Algorithm } from './types';

/**
 * Interpolation Consistency Training (Verma et al. 2019) as the Google MixMatch code trains it
 * (ict.py, workflow-spec.md 4.3): the EMA network (batch norm in training mode, statistics
 * discarded) predicts the unlabelled batch; the batch and those probabilities are mixed with their
 * reversal, one lambda' = max(lambda, 1 - lambda) per row, lambda ~ Beta(beta, beta); the raw
 * network's softmax on the mixed images must match the mixed teacher probabilities (squared error
 * averaged over classes and batch), weighted by consistency_weight ramped over warmup_pos.
 * The original is fed augmentation pairs but reads only the first, so one view is drawn here.
 */
export const ict: Algorithm = {
  name: 'ict',
  className: 'ICT',
  description: 'Interpolation Consistency Training: mixed unlabelled images must get the mixed EMA-teacher predictions (Verma et al. 2019)',
  tagStyle: 'google',
  hparams: [
    { name: 'consistency_weight', type: 'float', default: 50, help: 'weight of the consistency loss after the ramp' },
    WARMUP_POS,
    { name: 'beta', type: 'float', default: 0.5, help: 'MixUp Beta(beta, beta) parameter' },
  ],
  views: () => 1,
  targets(ctx, inputs) {
    const u = inputs.u[0];
    const teacher = tf.softmax(ctx.forward(u, { training: true, ema: true }));
    const lam = mixWeights(ctx, u.shape[0], Number(ctx.hp.beta));
    return { mixedU: mixWithReversed(u, lam), teacher: mixWithReversed(teacher, lam) };
  },
  loss(ctx, inputs, targets) {
    const xe = labelledCrossEntropy(ctx, inputs);
    const student = ctx.forward(targets.mixedU as tf.Tensor4D, { training: true });
    const mt = softmaxMse(targets.teacher as tf.Tensor2D, student);
    const loss = tf.add(xe, tf.mul(mt, warmup(ctx) * Number(ctx.hp.consistency_weight))) as tf.Scalar;
    return { loss, scalars: { 'losses/xe': xe, 'losses/mt': mt } };
  },
};
