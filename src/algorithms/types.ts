import type * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random';

export type HParamValue = number | string | boolean;

export type HParamType = 'float' | 'int' | 'string' | 'bool';

/** A hyperparameter an algorithm declares; the CLI exposes it as --<kebab-name> and the run name includes it. */
export interface HParamSpec {
  name: string; // snake_case, as the originals (w_match, warmup_kimg)
  type: HParamType;
  default: HParamValue;
  help: string;
  choices?: string[];
  /**
   * Part of the run directory name (default true): only what changes the model or the loss.
   * 'if-changed': only when it differs from the default, for settings the originals did not have,
   * so that a run with the defaults keeps the originals' name.
   */
  inName?: boolean | 'if-changed';
  /** The key in the run directory name when it differs from the flag (RealMix: percent_mask -> ood_mask). */
  runKey?: string;
}

export interface Inputs {
  /** Augmented labelled batch in [-1, 1], NHWC. */
  x: tf.Tensor4D;
  /** Integer labels of x. */
  labels: tf.Tensor1D;
  /** Independently (weakly) augmented views of the unlabelled batch (as many as the algorithm declared). */
  u: tf.Tensor4D[];
  /** Strongly augmented views of the same unlabelled images (FixMatch), as many as declared. */
  uStrong?: tf.Tensor4D[];
  /** Dataset indices of the rows of x, for per-sample state. */
  labeledIndex?: Int32Array;
  /** Dataset indices of the rows of every unlabelled view. */
  unlabeledIndex?: Int32Array;
}

/**
 * Per-sample memory that lives as long as the run and is saved in its checkpoints (Temporal
 * Ensembling's ensemble predictions): `width` float32 values per labelled and per unlabelled image.
 */
export interface SampleState {
  width: number;
  labeled: Float32Array;
  unlabeled: Float32Array;
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
  /** This step's learning rate (after any decay); set by the training loop. */
  lr?: number;
  /** Present when the algorithm declared sampleStateWidth. */
  sampleState?: SampleState;
}

export interface StepResult {
  loss: tf.Scalar;
  /** Extra scalars to log, by TensorBoard tag. */
  scalars: Record<string, tf.Scalar>;
  /** Tensors the algorithm's `update` needs after the optimiser step (read back as float32 arrays). */
  outputs?: Record<string, tf.Tensor>;
}

export interface Algorithm {
  /** --algo name */
  name: string;
  /** Class name that starts the run directory name, as the originals (MixMatch, FSBaseline). */
  className: string;
  description: string;
  hparams: HParamSpec[];
  /** Overrides of the shared defaults (lr, wd, optimizer, ...) where the original script changes them. */
  sharedDefaults?: Partial<Record<string, HParamValue>>;
  /** Weakly augmented unlabelled views per step; 0 when the algorithm uses no unlabelled data. */
  views(hp: Record<string, HParamValue>): number;
  /** Unlabelled images per labelled image in a step (FixMatch's mu); default 1. */
  uratio?(hp: Record<string, HParamValue>): number;
  /** Strongly augmented views of the unlabelled batch, and the augmentation that makes them. */
  strong?(hp: Record<string, HParamValue>): { views: number; augmentation: string };
  /** Per-sample state: float32 values per image (labelled and unlabelled), kept across steps and checkpoints. */
  sampleStateWidth?(nclass: number, hp: Record<string, HParamValue>): number;
  /** The run directory name carries the training augmentation (RealMix's `augmentation` kwarg). */
  augmentationInName?: boolean;
  /** Scalar tags: the Google code's or RealMix's (workflow-spec.md 3.6). */
  tagStyle: 'google' | 'realmix';
  /** Rejects impossible hyperparameter combinations with a UserError. */
  validate?(hp: Record<string, HParamValue>): void;
  /**
   * One step's loss. Runs inside the gradient tape: anything that must not receive gradients
   * (label guesses, teacher targets) is computed in `targets`, which runs first, outside the tape.
   */
  targets?(ctx: StepContext, inputs: Inputs): Record<string, tf.Tensor>;
  loss(ctx: StepContext, inputs: Inputs, targets: Record<string, tf.Tensor>): StepResult;
  /** After the optimiser step: folds the step's `outputs` into per-sample state. */
  update?(ctx: StepContext, inputs: Inputs, outputs: Record<string, Float32Array>): void;
}
