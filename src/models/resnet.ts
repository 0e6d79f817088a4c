import * as tf from '@tensorflow/tfjs';
import { ForwardContext, Model, SpecBuilder, batchNorm, conv2d, dense, leakyRelu } from './layers';

/**
 * The originals' ResNet ("WRN-28-2" with filters 32, scales 3, repeat 4): 3x3 stem to 16
 * channels; `scales` stages of `repeat` pre-activation residual blocks of width filters*2^s
 * (stride 2 at the first block of every stage but the first); BN -> LeakyReLU(0.1) -> global
 * average pool -> dense. BN momentum 0.999, epsilon 1e-3. workflow-spec.md section 4.1.
 */
export interface ResNetOptions {
  nclass: number;
  inputShape: [number, number, number];
  filters: number;
  scales: number;
  repeat: number;
}

/** scales = 0 means ceil(log2(width)) - 2, as the originals (3 for 32 px, 5 for 96 px). */
export function defaultScales(width: number): number {
  return Math.max(1, Math.ceil(Math.log2(width)) - 2);
}

interface BlockPlan {
  name: string;
  cin: number;
  cout: number;
  stride: number;
  activateShortcut: boolean;
}

export function resnet(opts: ResNetOptions): Model {
  const [, , c] = opts.inputShape;
  const b = new SpecBuilder();
  b.conv('stem', 3, c, 16);
  const blocks: BlockPlan[] = [];
  let cin = 16;
  for (let s = 0; s < opts.scales; s++) {
    const width = opts.filters << s;
    for (let i = 0; i < opts.repeat; i++) {
      const name = `stage${s}/block${i}`;
      const stride = i === 0 && s > 0 ? 2 : 1;
      blocks.push({ name, cin, cout: width, stride, activateShortcut: s === 0 && i === 0 });
      b.bn(`${name}/bn1`, cin);
      b.conv(`${name}/conv1`, 3, cin, width);
      b.bn(`${name}/bn2`, width);
      b.conv(`${name}/conv2`, 3, width, width);
      if (cin !== width) b.conv(`${name}/shortcut`, 1, cin, width);
      cin = width;
    }
  }
  b.bn('head/bn', cin);
  b.dense('head/dense', cin, opts.nclass);

  const residual = (ctx: ForwardContext, p: BlockPlan, x: tf.Tensor4D): tf.Tensor4D => {
    const act = leakyRelu(batchNorm(ctx, `${p.name}/bn1`, x));
    let body = conv2d(ctx, `${p.name}/conv1`, act, p.stride);
    body = conv2d(ctx, `${p.name}/conv2`, leakyRelu(batchNorm(ctx, `${p.name}/bn2`, body)), 1);
    let shortcut = p.activateShortcut ? act : x;
    if (p.cin !== p.cout) shortcut = conv2d(ctx, `${p.name}/shortcut`, shortcut, p.stride);
    return tf.add(shortcut, body);
  };

  return {
    arch: 'resnet',
    nclass: opts.nclass,
    inputShape: opts.inputShape,
    params: b.params,
    state: b.state,
    forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
      let y = conv2d(ctx, 'stem', x, 1);
      for (const p of blocks) y = residual(ctx, p, y);
      y = leakyRelu(batchNorm(ctx, 'head/bn', y));
      const pooled = tf.mean(y, [1, 2]) as tf.Tensor2D;
      return dense(ctx, 'head/dense', pooled);
    },
  };
}
