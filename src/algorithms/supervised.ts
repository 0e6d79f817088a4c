import * as tf from '@tensorflow/tfjs';
import { crossEntropy } from '../train/ops';
import type { Algorithm } from './types';

/**
 * The fully-supervised baseline (fs_baseline): cross-entropy with label smoothing
 * l <- l - smoothing * (l - 1/K) on the labelled data only, with the shared EMA and decoupled
 * weight decay. On a split dataset it trains on the labelled part; on `<name>-<valid>` on the whole
 * train set.
 */
export const supervised: Algorithm = {
  name: 'supervised',
  className: 'FSBaseline',
  description: 'fully-supervised baseline with label smoothing (fs_baseline); uses no unlabelled data',
  tagStyle: 'google',
  hparams: [{ name: 'smoothing', type: 'float', default: 0.001, help: 'label smoothing towards the uniform distribution' }],
  views: () => 0,
  loss(ctx, inputs) {
    const k = ctx.nclass;
    const s = Number(ctx.hp.smoothing);
    const onehot = tf.oneHot(inputs.labels, k).toFloat();
    const target = tf.sub(onehot, tf.mul(tf.sub(onehot, 1 / k), s)) as tf.Tensor2D;
    const logits = ctx.forward(inputs.x, { training: true, updateBn: true });
    const xe = tf.mean(crossEntropy(target, logits)) as tf.Scalar;
    return { loss: xe, scalars: { 'losses/xe': xe } };
  },
};
