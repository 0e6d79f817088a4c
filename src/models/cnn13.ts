import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { ForwardContext, Model, SpecBuilder, batchNorm, conv2d, dense, glorotVariance } from './layers';

/**
 * The 13-layer ConvNet of the Mean Teacher paper as the Google MixMatch code simplifies it (CNN13,
 * workflow-spec.md 4.2; no dropout, input noise or forked heads): three 3x3 convolutions of width f,
 * 2x2 max pool, three of 2f, 2x2 max pool, a 3x3 'valid' convolution of 4f, 1x1 convolutions of 2f
 * and f, global mean, dense. Every convolution carries its bias and LeakyReLU(0.2) (TensorFlow's
 * default slope) and is followed by batch norm, in that order, as the original. The paper's network
 * has f = 128; the original asserts scales == 3 (it is specified for 32x32 inputs).
 */
export interface Cnn13Options {
  nclass: number;
  inputShape: [number, number, number];
  filters: number;
  scales: number;
}

interface ConvPlan {
  name: string;
  k: number;
  cin: number;
  cout: number;
  padding: 'same' | 'valid';
  /** max pool 2x2 after this layer's batch norm */
  poolAfter: boolean;
}

export function cnn13Plan(channels: number, f: number): ConvPlan[] {
  const plan: ConvPlan[] = [];
  let cin = channels;
  const add = (k: number, cout: number, padding: 'same' | 'valid' = 'same', poolAfter = false) => {
    plan.push({ name: `conv${plan.length}`, k, cin, cout, padding, poolAfter });
    cin = cout;
  };
  add(3, f);
  add(3, f);
  add(3, f, 'same', true);
  add(3, 2 * f);
  add(3, 2 * f);
  add(3, 2 * f, 'same', true);
  add(3, 4 * f, 'valid');
  add(1, 2 * f);
  add(1, f);
  return plan;
}

export function cnn13(opts: Cnn13Options): Model {
  if (opts.scales !== 3) throw new UserError(`--arch cnn13 is defined for scales 3 (32x32-like inputs), got scales ${opts.scales}; pass --scales 3 or another --arch`);
  const [h, w, c] = opts.inputShape;
  // two 2x2 pools then a 3x3 valid convolution
  if (Math.floor(Math.floor(h / 2) / 2) < 3 || Math.floor(Math.floor(w / 2) / 2) < 3) {
    throw new UserError(`--arch cnn13 needs images of at least 12x12 pixels, got ${h}x${w}`);
  }
  const plan = cnn13Plan(c, opts.filters);
  const b = new SpecBuilder();
  for (const p of plan) {
    b.conv(p.name, p.k, p.cin, p.cout, true, glorotVariance(p.k, p.cin, p.cout));
    b.bn(`${p.name}/bn`, p.cout);
  }
  b.dense('dense', opts.filters, opts.nclass, glorotVariance(1, opts.filters, opts.nclass));

  return {
    arch: 'cnn13',
    nclass: opts.nclass,
    inputShape: opts.inputShape,
    params: b.params,
    state: b.state,
    forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
      let y = x;
      for (const p of plan) {
        y = tf.leakyRelu(conv2d(ctx, p.name, y, 1, p.padding), 0.2);
        y = batchNorm(ctx, `${p.name}/bn`, y);
        if (p.poolAfter) y = tf.maxPool(y, 2, 2, 'valid');
      }
      return dense(ctx, 'dense', tf.mean(y, [1, 2]) as tf.Tensor2D);
    },
  };
}
