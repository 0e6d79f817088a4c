import * as tf from '@tensorflow/tfjs';
import type { Algorithm, ForwardOptions, HParamValue, Inputs, StepContext } from '../algorithms/types';
import type { ForwardContext, Model } from '../models/layers';
import type { Rng } from '../random';
import type { Adam } from './adam';
import type { WeightStore } from './weights';

/** A forward function for given options; batch-norm statistics go to `bnUpdates` (first call only). */
export type Forward = (opts: ForwardOptions, bnUpdates: Map<string, tf.Tensor> | null) => (x: tf.Tensor4D) => tf.Tensor2D;

export function makeForward(model: Model, weights: WeightStore, rng: Rng): Forward {
  return (opts, bnUpdates) => (x) => {
    const source = opts.ema ? weights.ema : weights.params;
    const ctx: ForwardContext = {
      training: opts.training,
      param: (n) => source.get(n)!,
      state: (n) => weights.state.get(n)!,
      bnUpdates: opts.training && opts.updateBn && bnUpdates && bnUpdates.size === 0 ? bnUpdates : undefined,
      seed: opts.training ? rng.randint(0, 2 ** 31 - 1) : undefined,
    };
    return model.forward(x, ctx);
  };
}

export interface StepSettings {
  algorithm: Algorithm;
  hp: Record<string, HParamValue>;
  lr: number;
  wd: number;
  ema: number;
  batch: number;
  nclass: number;
  totalImages: number;
}

/**
 * One optimisation step, the same for every algorithm: targets outside the tape, the loss and its
 * gradients, Adam, the kept batch-norm statistics, the EMA and decoupled weight decay. Disposes
 * the inputs and everything it made; returns the loss and the algorithm's scalars as numbers.
 */
export async function trainStep(
  s: StepSettings,
  forward: Forward,
  weights: WeightStore,
  adam: Adam,
  rng: Rng,
  inputs: Inputs,
  imagesSeen: number,
): Promise<{ loss: number; scalars: Record<string, number> }> {
  const algo = s.algorithm;
  const bnUpdates = new Map<string, tf.Tensor>();
  const ctx: StepContext = {
    forward: (x, opts) => forward(opts, bnUpdates)(x),
    nclass: s.nclass,
    imagesSeen,
    totalImages: s.totalImages,
    batch: s.batch,
    hp: s.hp,
    rng,
  };
  const targets = algo.targets ? tf.tidy(() => algo.targets!(ctx, inputs)) : {};
  const kept: Record<string, tf.Tensor> = {};
  const { value, grads } = tf.variableGrads(() => {
    const r = algo.loss(ctx, inputs, targets);
    for (const [k, v] of Object.entries(r.scalars)) kept[k] = tf.keep(v);
    return r.loss;
  }, weights.trainable());
  adam.apply(weights.params, grads);
  weights.applyBnUpdates(bnUpdates);
  weights.updateEma(s.ema);
  weights.decayKernels(1 - s.wd * s.lr);
  const loss = (await value.data())[0];
  const scalars: Record<string, number> = {};
  for (const [k, v] of Object.entries(kept)) scalars[k] = (await v.data())[0];
  tf.dispose([value, ...Object.values(grads), ...Object.values(kept), ...Object.values(targets), ...bnUpdates.values(), inputs.x, inputs.labels, ...inputs.u]);
  return { loss, scalars };
}
