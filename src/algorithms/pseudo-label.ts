import * as tf from '@tensorflow/tfjs';
import { crossEntropy } from '../train/ops';
import { stopGradient } from '../models/layers';
import { WARMUP_POS, labelledCrossEntropy, smoothingUnused, warmup } from './pi-model';
import type { Algorithm } from './types';

/**
 * Pseudo-Label (Lee 2013) as the Google MixMatch code trains it (pseudo_label.py,
 * workflow-spec.md 4.3): the network's own argmax on the unlabelled batch is the hard label for its
 * cross-entropy there, counted only where the top softmax probability exceeds `threshold`; the
 * masked losses are averaged over the whole batch (confident or not). Weighted by
 * consistency_weight ramped over warmup_pos. `smoothing` is only in the run name.
 */
export const pseudoLabel: Algorithm = {
  name: 'pseudo_label',
  className: 'PseudoLabel',
  description: 'Pseudo-Label: confident predictions on unlabelled images become their hard labels (Lee 2013)',
  tagStyle: 'google',
  hparams: [
    { name: 'consistency_weight', type: 'float', default: 1, help: 'weight of the pseudo-label loss after the ramp' },
    { name: 'threshold', type: 'float', default: 0.95, help: 'minimum top softmax probability for a pseudo-label to count' },
    WARMUP_POS,
    smoothingUnused(0.1),
  ],
  views: () => 1,
  loss(ctx, inputs) {
    const xe = labelledCrossEntropy(ctx, inputs);
    const logitsU = ctx.forward(inputs.u[0], { training: true });
    // the labels and the mask come from the same pass as the loss but carry no gradient
    const probs = stopGradient(tf.softmax(logitsU));
    const hard = tf.oneHot(tf.argMax(probs, 1), ctx.nclass).toFloat() as tf.Tensor2D;
    // [max p > threshold] (any class above it); step, unlike the comparisons, has a gradient (zero) in tfjs
    const mask = tf.step(tf.sub(tf.max(probs, 1), Number(ctx.hp.threshold)));
    const perRow = crossEntropy(hard, logitsU);
    const pl = tf.mean(tf.mul(perRow, mask)) as tf.Scalar;
    const loss = tf.add(xe, tf.mul(pl, warmup(ctx) * Number(ctx.hp.consistency_weight))) as tf.Scalar;
    return { loss, scalars: { 'losses/xe': xe, 'losses/pl': pl } };
  },
};
