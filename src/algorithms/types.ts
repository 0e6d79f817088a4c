import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random';

export type HParamValue = number | string | boolean;

/** A hyperparameter an algorithm declares; the CLI exposes it as --<kebab-name> and the run name includes it. */
export interface HParamSpec {
  name: string; // snake_case, as the originals (w_match, warmup_kimg)
  type: 'float' | 'int' | 'string' | 'bool';
  default: HParamValue;
  help: string;
  choices?: string[];
  /** Part of the run directory name (default true): only what changes the model or the loss. */
  inName?: boolean;
}

export interface Inputs {
  /** Augmented labelled batch in [-1, 1], NHWC. */
  x: tf.Tensor4D;
  /** Integer labels of x. */
  labels: tf.Tensor1D;
  /** Independently augmented views of the unlabelled batch (as many as the algorithm declared). */
  u: tf.Tensor4D[];
}

export interface ForwardOptions {
  training: boolean;
  /** Keep this call's batch-norm statistics for the moving averages (the originals keep only one call's). */
  updateBn?: boolean;
  /** Evaluate with the EMA weights instead of the raw ones. */
  ema?: boolean;
}

export interface StepContext {
  forward(x: tf.Tensor4D, opts: ForwardOptions): tf.Tensor2D;
  nclass: number;
  /** Images seen before this step (the originals' global_step). */
  imagesSeen: number;
  /** Total images the run trains on (train_kimg * 1024). */
  totalImages: number;
  batch: number;
  hp: Record<string, HParamValue>;
  rng: Rng;
}

export interface StepResult {
  loss: tf.Scalar;
  /** Extra scalars to log, by TensorBoard tag. */
  scalars: Record<string, tf.Scalar>;
}

export interface Algorithm {
  /** --algo name */
  name: string;
  /** Class name that starts the run directory name, as the originals (MixMatch, FSBaseline). */
  className: string;
  description: string;
  hparams: HParamSpec[];
  /** Overrides of the shared defaults (lr, wd, ...) where the original script changes them. */
  sharedDefaults?: Partial<Record<string, HParamValue>>;
  /** Unlabelled views per step; 0 when the algorithm uses no unlabelled data. */
  views(hp: Record<string, HParamValue>): number;
  /** Scalar tags: the Google code's or RealMix's (workflow-spec.md 3.6). */
  tagStyle: 'google' | 'realmix';
  /**
   * One step's loss. Runs inside the gradient tape: anything that must not receive gradients
   * (label guesses, teacher targets) is computed in `targets`, which runs first, outside the tape.
   */
  targets?(ctx: StepContext, inputs: Inputs): Record<string, tf.Tensor>;
  loss(ctx: StepContext, inputs: Inputs, targets: Record<string, tf.Tensor>): StepResult;
}
