import * as tf from '@tensorflow/tfjs';
import { mixupReversed } from './mixup';
import { meanCrossEntropy } from './pi-model';
import type { Algorithm } from './types';

/**
 * The fully-supervised MixUp baseline (fully_supervised/fs_mixup.py, workflow-spec.md 5): the
 * labelled batch and its one-hot labels are mixed with the reversed batch, one
 * lambda' = max(lambda, 1 - lambda) per row, lambda ~ Beta(beta, beta); cross-entropy on the mixed
 * rows. Uses no unlabelled data: like `supervised`, it trains on the labelled part of a split
 * dataset and on the whole train set of a `<name>-<valid>` dataset. Its script's weight decay
 * default is 0.002.
 */
export const supervisedMixup: Algorithm = {
  name: 'supervised_mixup',
  className: 'FSMixup',
  description: 'fully-supervised MixUp baseline (fs_mixup); uses no unlabelled data',
  tagStyle: 'google',
  hparams: [{ name: 'beta', type: 'float', default: 0.5, help: 'MixUp Beta(beta, beta) parameter' }],
  sharedDefaults: { wd: 0.002 },
  views: () => 0,
  targets(ctx, inputs) {
    const onehot = tf.oneHot(inputs.labels, ctx.nclass).toFloat() as tf.Tensor2D;
    const m = mixupReversed(ctx, inputs.x, onehot, Number(ctx.hp.beta));
    return { mixedX: m.x, mixedY: m.y };
  },
  loss(ctx, _inputs, t) {
    const logits = ctx.forward(t.mixedX as tf.Tensor4D, { training: true, updateBn: true });
    const xe = meanCrossEntropy(t.mixedY as tf.Tensor2D, logits);
    return { loss: xe, scalars: { 'losses/xe': xe } };
  },
};
