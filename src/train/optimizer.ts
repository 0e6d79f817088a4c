import type * as tf from '@tensorflow/tfjs';
import { Adam } from './adam';
import { NesterovSgd } from './sgd';

/**
 * What the training step needs from an optimiser. It updates the flat parameter vector (./flat)
 * from the flat gradient. Its whole state is flat variables laid out as the parameters (saved as
 * checkpoint groups, one tensor per parameter, under the names `slots()` gives) plus a step count,
 * so a resumed run continues exactly.
 */
export interface Optimizer {
  readonly kind: OptimizerKind;
  /** Updates applied so far. */
  t: number;
  /** One update with learning rate `lr` (the configured one when omitted). */
  apply(param: tf.Variable, grad: tf.Tensor, lr?: number): void;
  /** Checkpoint group name -> flat variable, in the parameters' layout. */
  slots(): Record<string, tf.Variable>;
  dispose(): void;
}

export const OPTIMIZERS = ['adam', 'sgd'] as const;
export type OptimizerKind = (typeof OPTIMIZERS)[number];

export const LR_DECAYS = ['none', 'cosine'] as const;
export type LrDecay = (typeof LR_DECAYS)[number];

/** An optimiser for `size` parameters (the flat vector's length). */
export function makeOptimizer(kind: OptimizerKind, size: number, lr: number, momentum: number): Optimizer {
  return kind === 'sgd' ? new NesterovSgd(size, lr, momentum) : new Adam(size, lr);
}

/**
 * The learning rate for a step that starts after `imagesSeen` of `totalImages` images. FixMatch's
 * cosine decay, lr * cos(7 pi k / (16 K)), never reaches zero: it ends at lr * cos(7 pi / 16) = 0.2 lr.
 */
export function learningRate(lr: number, decay: LrDecay, imagesSeen: number, totalImages: number): number {
  if (decay === 'none' || totalImages <= 0) return lr;
  const progress = Math.min(Math.max(imagesSeen / totalImages, 0), 1);
  return lr * Math.cos((7 * Math.PI * progress) / 16);
}
