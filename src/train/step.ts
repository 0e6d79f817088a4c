import * as tf from '@tensorflow/tfjs';
import type { Algorithm, ForwardOptions, HParamValue, Inputs, SampleState, StepContext } from '../algorithms/types';
import type { ForwardContext, Model } from '../models/layers';
import type { Rng } from '../random';
import { learningRate, type LrDecay, type Optimizer } from './optimizer';
import type { WeightStore } from './weights';

/**
 * A forward function for given options; batch-norm statistics go to `bnUpdates` (first call only).
 * `params`, when given, are the parameter tensors to use (the training step passes ones cut on its
 * gradient tape); otherwise the store's current ones (EMA or raw, per `opts.ema`).
 */
export type Forward = (opts: ForwardOptions, bnUpdates: Map<string, tf.Tensor> | null, params?: Map<string, tf.Tensor>) => (x: tf.Tensor4D) => tf.Tensor2D;

export function makeForward(model: Model, weights: WeightStore, rng: Rng): Forward {
  return (opts, bnUpdates, params) => (x) => {
    const source = params && !opts.ema ? params : weights.views(opts.ema ? 'ema' : 'param');
    const ctx: ForwardContext = {
      training: opts.training,
      param: (n) => source.get(n)!,
      state: (n) => weights.views('state').get(n)!,
      bnUpdates: opts.training && opts.updateBn && bnUpdates && bnUpdates.size === 0 ? bnUpdates : undefined,
      seed: opts.training ? rng.randint(0, 2 ** 31 - 1) : undefined,
    };
    return model.forward(x, ctx);
  };
}

export const WD_MODES = ['decoupled', 'l2'] as const;
export type WdMode = (typeof WD_MODES)[number];

export interface StepSettings {
  algorithm: Algorithm;
  hp: Record<string, HParamValue>;
  lr: number;
  wd: number;
  ema: number;
  batch: number;
  nclass: number;
  totalImages: number;
  /** 'decoupled' (the default, MixMatch's): kernels *= 1 - wd*lr after each step; 'l2' (FixMatch's): wd * sum(kernel^2)/2 added to the loss. */
  wdMode?: WdMode;
  /** Learning-rate schedule over the run (default none). */
  lrDecay?: LrDecay;
  sampleState?: SampleState;
  /** 'skip': a step with a non-finite loss or gradient changes nothing (see --nan-policy). */
  nanPolicy?: 'stop' | 'skip';
}

export interface StepOutcome {
  loss: number;
  scalars: Record<string, number>;
  /** The step was dropped under --nan-policy skip: weights, optimiser and EMA are unchanged. */
  skipped?: boolean;
}

/**
 * One optimisation step, the same for every algorithm: targets outside the tape, the loss (plus
 * the L2 term in 'l2' mode) and its gradients, the optimiser, the kept batch-norm statistics, the
 * EMA, decoupled weight decay in 'decoupled' mode, then the algorithm's per-sample update.
 * Disposes the inputs and everything it made; returns the loss and the scalars as numbers.
 */
export async function trainStep(
  s: StepSettings,
  forward: Forward,
  weights: WeightStore,
  optimizer: Optimizer,
  rng: Rng,
  inputs: Inputs,
  imagesSeen: number,
): Promise<StepOutcome> {
  const algo = s.algorithm;
  const lr = learningRate(s.lr, s.lrDecay ?? 'none', imagesSeen, s.totalImages);
  const l2 = s.wdMode === 'l2';
  const bnUpdates = new Map<string, tf.Tensor>();
  // Inside the gradient tape the parameters must be cut from the flat variable on that tape, once
  // for all the loss's forward passes; outside it (targets) the store's cached cut serves.
  let tapeParams: Map<string, tf.Tensor> | undefined;
  let onTape = false;
  const ctx: StepContext = {
    forward: (x, opts) => forward(opts, bnUpdates, onTape ? (tapeParams ??= weights.paramViews()) : undefined)(x),
    nclass: s.nclass,
    imagesSeen,
    totalImages: s.totalImages,
    batch: s.batch,
    hp: s.hp,
    rng,
    lr,
    sampleState: s.sampleState,
  };
  const targets = algo.targets ? tf.tidy(() => algo.targets!(ctx, inputs)) : {};
  const kept: Record<string, tf.Tensor> = {};
  const outputs: Record<string, tf.Tensor> = {};
  onTape = true;
  let taped: { value: tf.Scalar; grads: tf.NamedTensorMap };
  try {
    taped = tf.variableGrads(() => {
      const r = algo.loss(ctx, inputs, targets);
      for (const [k, v] of Object.entries(r.scalars)) kept[k] = tf.keep(v);
      for (const [k, v] of Object.entries(r.outputs ?? {})) outputs[k] = tf.keep(v);
      if (!l2) return r.loss;
      const wdLoss = weights.kernelL2();
      kept['losses/wd'] = tf.keep(wdLoss);
      return tf.add(r.loss, tf.mul(wdLoss, s.wd)) as tf.Scalar;
    }, weights.trainable());
  } finally {
    onTape = false;
    tapeParams = undefined;
  }
  const { value, grads } = taped;
  const grad = grads[weights.param.name];
  const disposeStep = () =>
    tf.dispose([
      value,
      ...Object.values(grads),
      ...Object.values(kept),
      ...Object.values(outputs),
      ...Object.values(targets),
      ...bnUpdates.values(),
      inputs.x,
      inputs.labels,
      ...inputs.u,
      ...(inputs.uStrong ?? []),
    ]);
  if (s.nanPolicy === 'skip') {
    // one sum over every gradient is finite exactly when they all are (short of overflow, which is as bad)
    const gradSum = tf.tidy(() => tf.sum(grad));
    const [lossValue, gradValue] = [(await value.data())[0], (await gradSum.data())[0]];
    gradSum.dispose();
    if (!Number.isFinite(lossValue) || !Number.isFinite(gradValue)) {
      disposeStep();
      return { loss: lossValue, scalars: {}, skipped: true };
    }
  }
  optimizer.apply(weights.param, grad, lr);
  weights.applyBnUpdates(bnUpdates);
  weights.updateEma(s.ema);
  if (!l2) weights.decayKernels(1 - s.wd * lr);
  const loss = (await value.data())[0];
  const scalars: Record<string, number> = {};
  for (const [k, v] of Object.entries(kept)) scalars[k] = (await v.data())[0];
  if ((s.lrDecay ?? 'none') !== 'none') scalars['monitors/lr'] = lr;
  if (algo.update) {
    const host: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries(outputs)) host[k] = (await v.data()) as Float32Array;
    algo.update(ctx, inputs, host);
  }
  disposeStep();
  return { loss, scalars };
}
