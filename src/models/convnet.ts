import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { ForwardContext, Model, SpecBuilder, conv2d, glorotVariance } from './layers';

/**
 * The originals' plain ConvNet (workflow-spec.md 4.2): a 3x3 convolution of width `filters`, then
 * for each scale s a 3x3 convolution of filters*2^s, one of filters*2^(s+1) and a 2x2 average
 * pool; a last 3x3 convolution to nclass channels (no activation) averaged over space gives the
 * logits. LeakyReLU(0.2), TensorFlow's default slope, after every other convolution; no batch norm.
 */
export interface ConvNetOptions {
  nclass: number;
  inputShape: [number, number, number];
  filters: number;
  scales: number;
}

export function convnet(opts: ConvNetOptions): Model {
  const [h, w, c] = opts.inputShape;
  if (Math.min(h, w) >> opts.scales < 1) throw new UserError(`--arch convnet with scales ${opts.scales} pools ${h}x${w} images down to nothing; lower --scales`);
  const b = new SpecBuilder();
  const layers: Array<{ name: string; poolAfter: boolean }> = [];
  let cin = c;
  const add = (name: string, cout: number, poolAfter = false) => {
    b.conv(name, 3, cin, cout, true, glorotVariance(3, cin, cout));
    layers.push({ name, poolAfter });
    cin = cout;
  };
  add('conv0', opts.filters);
  for (let s = 0; s < opts.scales; s++) {
    add(`scale${s}/conv0`, opts.filters << s);
    add(`scale${s}/conv1`, opts.filters << (s + 1), true);
  }
  b.conv('logits', 3, cin, opts.nclass, true, glorotVariance(3, cin, opts.nclass));

  return {
    arch: 'convnet',
    nclass: opts.nclass,
    inputShape: opts.inputShape,
    params: b.params,
    state: b.state,
    forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
      let y = x;
      for (const l of layers) {
        y = tf.leakyRelu(conv2d(ctx, l.name, y), 0.2);
        if (l.poolAfter) y = tf.avgPool(y, 2, 2, 'valid');
      }
      return tf.mean(conv2d(ctx, 'logits', y), [1, 2]) as tf.Tensor2D;
    },
  };
}
