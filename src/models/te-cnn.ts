import * as tf from '@tensorflow/tfjs';
import { addGaussianNoise, dropout } from '../backend/native-random';
import { ForwardContext, Model, SpecBuilder, dense, weightNormKernel } from './layers';

/**
 * The small MNIST network of the Temporal Ensembling walk-through (seeds/003): Gaussian input noise
 * (train only), two weight-normalised 3x3 convolutions (16 and 32 channels), each followed by a
 * 3x3/2 max pool and ReLU, dropout 0.5, and one dense layer. Works for any input size and channel
 * count: the dense layer sees ceil(H/4) x ceil(W/4) x 32 features.
 */
export interface TeCnnOptions {
  nclass: number;
  inputShape: [number, number, number];
  noiseStd?: number;
  dropout?: number;
}

export function teCnn(opts: TeCnnOptions): Model {
  const [h, w, c] = opts.inputShape;
  const noiseStd = opts.noiseStd ?? 0.15;
  const rate = opts.dropout ?? 0.5;
  const b = new SpecBuilder();
  const wnConv = (name: string, cin: number, cout: number) => {
    b.params.push({ name: `${name}/v`, shape: [3, 3, cin, cout], init: { kind: 'he_fanout' }, decay: true });
    b.params.push({ name: `${name}/g`, shape: [cout], init: { kind: 'norm_of', param: `${name}/v` }, decay: false });
    b.params.push({ name: `${name}/bias`, shape: [cout], init: { kind: 'zeros' }, decay: false });
  };
  wnConv('conv1', c, 16);
  wnConv('conv2', 16, 32);
  const fh = Math.ceil(Math.ceil(h / 2) / 2);
  const fw = Math.ceil(Math.ceil(w / 2) / 2);
  const features = fh * fw * 32;
  b.dense('dense', features, opts.nclass);

  const block = (ctx: ForwardContext, name: string, x: tf.Tensor4D): tf.Tensor4D => {
    const k = weightNormKernel(ctx, name) as tf.Tensor4D;
    const y = tf.add(tf.conv2d(x, k, 1, 'same'), ctx.param(`${name}/bias`)) as tf.Tensor4D;
    return tf.relu(tf.maxPool(y, 3, 2, 'same'));
  };

  return {
    arch: 'te_cnn',
    nclass: opts.nclass,
    inputShape: opts.inputShape,
    params: b.params,
    state: b.state,
    forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
      let y = x;
      if (ctx.training && noiseStd > 0) y = addGaussianNoise(y, noiseStd, ctx.seed);
      y = block(ctx, 'conv1', y);
      y = block(ctx, 'conv2', y);
      let flat = tf.reshape(y, [y.shape[0], features]) as tf.Tensor2D;
      if (ctx.training && rate > 0) flat = dropout(flat, rate, ctx.seed === undefined ? undefined : ctx.seed + 1);
      return dense(ctx, 'dense', flat);
    },
  };
}
