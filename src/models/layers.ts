import * as tf from '@tensorflow/tfjs';
import { batchNormTraining } from '../backend/wasm-training';

/**
 * Functional building blocks. A model is a pure function of (weights, input): the training loop
 * owns the variables, so the same forward pass serves the raw weights, the EMA weights and any
 * checkpoint, and batch-norm statistics updates can be kept from one call and dropped from others
 * (MixMatch keeps only the first classifier call's).
 */

export type Init =
  | { kind: 'he_fanout' } // normal, std = sqrt(2 / (k*k*f_out)): the originals' conv init
  | { kind: 'glorot_normal' }
  | { kind: 'normal'; std: number }
  | { kind: 'zeros' }
  | { kind: 'ones' }
  /** The per-output-channel L2 norm of another parameter's initial value (weight-norm gain, as PyTorch's weight_norm starts). */
  | { kind: 'norm_of'; param: string };

export interface ParamSpec {
  name: string;
  shape: number[];
  init: Init;
  /** Decoupled weight decay applies to kernels only (conv and dense), never biases or BN parameters. */
  decay: boolean;
}

export interface StateSpec {
  name: string;
  shape: number[];
  init: 'zeros' | 'ones';
}

export interface ForwardContext {
  training: boolean;
  param(name: string): tf.Tensor;
  state(name: string): tf.Tensor;
  /** When set (training mode), batch statistics are recorded here so the caller can fold them into the moving averages. */
  bnUpdates?: Map<string, tf.Tensor>;
  /** Seed for this call's stochastic layers (noise, dropout); tfjs's seeded ops keep runs reproducible. */
  seed?: number;
}

export interface Model {
  readonly arch: string;
  readonly nclass: number;
  readonly inputShape: [number, number, number];
  readonly params: ParamSpec[];
  readonly state: StateSpec[];
  /** Logits [batch, nclass] for images in [-1, 1], NHWC. */
  forward(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D;
}

/**
 * TensorFlow's default kernel initialiser (glorot_uniform: limit sqrt(6 / (fan_in + fan_out)),
 * fans counting the k*k window), which the originals' ConvNet and CNN13 keep. Drawn as a normal of
 * the same variance, 2 / (fan_in + fan_out), because the weight store has no uniform initialiser.
 */
export function glorotVariance(k: number, cin: number, cout: number): Init {
  return { kind: 'normal', std: Math.sqrt(2 / (k * k * (cin + cout))) };
}

/** Collects parameter and state declarations while a model is being described. */
export class SpecBuilder {
  params: ParamSpec[] = [];
  state: StateSpec[] = [];

  conv(name: string, k: number, cin: number, cout: number, bias = true, init: Init = { kind: 'he_fanout' }): void {
    this.params.push({ name: `${name}/kernel`, shape: [k, k, cin, cout], init, decay: true });
    if (bias) this.params.push({ name: `${name}/bias`, shape: [cout], init: { kind: 'zeros' }, decay: false });
  }

  dense(name: string, fin: number, fout: number, init: Init = { kind: 'glorot_normal' }): void {
    this.params.push({ name: `${name}/kernel`, shape: [fin, fout], init, decay: true });
    this.params.push({ name: `${name}/bias`, shape: [fout], init: { kind: 'zeros' }, decay: false });
  }

  bn(name: string, c: number): void {
    this.params.push({ name: `${name}/gamma`, shape: [c], init: { kind: 'ones' }, decay: false });
    this.params.push({ name: `${name}/beta`, shape: [c], init: { kind: 'zeros' }, decay: false });
    this.state.push({ name: `${name}/moving_mean`, shape: [c], init: 'zeros' });
    this.state.push({ name: `${name}/moving_variance`, shape: [c], init: 'ones' });
  }
}

export function conv2d(
  ctx: ForwardContext,
  name: string,
  x: tf.Tensor4D,
  stride = 1,
  padding: 'same' | 'valid' = 'same',
  bias = true,
): tf.Tensor4D {
  const w = ctx.param(`${name}/kernel`) as tf.Tensor4D;
  let y = tf.conv2d(x, w, stride, padding);
  if (bias) y = tf.add(y, ctx.param(`${name}/bias`));
  return y;
}

export function dense(ctx: ForwardContext, name: string, x: tf.Tensor2D): tf.Tensor2D {
  return tf.add(tf.matMul(x, ctx.param(`${name}/kernel`) as tf.Tensor2D), ctx.param(`${name}/bias`));
}

export const BN_EPSILON = 1e-3;

/**
 * Batch norm over N, H, W. Training mode normalises with the batch's statistics and, when the
 * context asks, records them (variance Bessel-corrected, as TensorFlow's fused kernel does) for the
 * moving averages; inference mode uses the moving averages.
 */
export function batchNorm(ctx: ForwardContext, name: string, x: tf.Tensor4D): tf.Tensor4D {
  const gamma = ctx.param(`${name}/gamma`) as tf.Tensor1D;
  const beta = ctx.param(`${name}/beta`) as tf.Tensor1D;
  if (!ctx.training) {
    return tf.batchNorm4d(x, ctx.state(`${name}/moving_mean`) as tf.Tensor1D, ctx.state(`${name}/moving_variance`) as tf.Tensor1D, beta, gamma, BN_EPSILON);
  }
  // on wasm and native TensorFlow, one kernel with a cheap gradient beats moments + batchNorm (fewer full passes)
  const fused = tf.getBackend() === 'wasm' || tf.getBackend() === 'tensorflow' ? batchNormTraining(x, gamma, beta, BN_EPSILON) : null;
  const { mean, variance } = fused ?? tf.moments(x, [0, 1, 2]);
  if (ctx.bnUpdates) {
    const n = x.shape[0] * x.shape[1] * x.shape[2];
    const unbiased = n > 1 ? tf.mul(variance, n / (n - 1)) : variance;
    ctx.bnUpdates.set(`${name}/moving_mean`, tf.keep(mean));
    ctx.bnUpdates.set(`${name}/moving_variance`, tf.keep(unbiased));
  }
  return fused ? fused.y : tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, beta, gamma, BN_EPSILON);
}

export function leakyRelu(x: tf.Tensor4D, alpha = 0.1): tf.Tensor4D {
  return tf.leakyRelu(x, alpha);
}

/** Weight-normalised kernel: w = g * v / ||v|| per output channel (Salimans & Kingma), as in the Temporal Ensembling CNN. */
export function weightNormKernel(ctx: ForwardContext, name: string): tf.Tensor {
  const v = ctx.param(`${name}/v`);
  const g = ctx.param(`${name}/g`);
  const axes = v.shape.slice(0, -1).map((_, i) => i);
  const norm = tf.sqrt(tf.add(tf.sum(tf.square(v), axes), 1e-12));
  return tf.mul(v, tf.div(g, norm));
}

/**
 * The identity with no gradient (TensorFlow's stop_gradient), for targets that must be computed
 * inside the gradient tape from the same forward pass as the loss (pseudo-labels, VAT's teacher).
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const f = tf.customGrad((...inputs: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.clone(inputs[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
  }));
  return f(x) as T;
}
