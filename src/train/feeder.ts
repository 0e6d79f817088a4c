import * as tf from '@tensorflow/tfjs';
import type { Inputs } from '../algorithms/types';
import { isStateful, type Augmentation, type ImageShape, type StatefulAugmentation } from '../data/augment';
import { u8ToFloat } from '../data/augment-base';
import type { Rng } from '../random';
import { Batcher, type BatcherState } from './batcher';
import { imageSize, type ImageSet, type TrainingData } from './dataset';

/**
 * Augmentations that learn while the model trains (CTAugment): they keep state, which goes into
 * every checkpoint, and they learn from probes: a labelled image augmented with a policy drawn
 * without regard to what was learnt, which the model then classifies; how close its prediction
 * comes to the label is credited to that policy. The loop duck-types them (an augmentation, or a
 * part of a '+' chain, with these methods), so any augmentation that has them drops in.
 */
export interface ProbedAugmentation extends StatefulAugmentation {
  probePolicy(rng: Rng): unknown;
  /** The policy's operations on one uint8 image. */
  applyPolicyU8(img: Uint8Array, shape: ImageShape, policy: unknown, rng: Rng): Uint8Array;
  /** Credits a probe policy with 1 - 0.5 * sum|p - onehot(label)| of the prediction on its image (1 = perfect). */
  update(policy: unknown, proximity: number): void;
}

/** The parts of an augmentation that keep state: itself, or the stateful parts of a chain. */
export function statefulParts(a: Augmentation): StatefulAugmentation[] {
  if (isStateful(a)) return [a];
  const chain = a as { statefulParts?: () => StatefulAugmentation[] };
  return typeof chain.statefulParts === 'function' ? chain.statefulParts() : [];
}

export function isProbed(a: StatefulAugmentation): a is ProbedAugmentation {
  const x = a as Partial<ProbedAugmentation>;
  return typeof x.probePolicy === 'function' && typeof x.applyPolicyU8 === 'function' && typeof x.update === 'function';
}

/** Probe images of one step: the labelled batch under probe policies, with their labels. */
export interface Probe {
  images: tf.Tensor4D;
  labels: Int32Array;
  policies: unknown[];
  augmentation: ProbedAugmentation;
}

export interface FeederOptions {
  /** Weakly augmented unlabelled views per step. */
  views: number;
  /** Unlabelled images per labelled image. */
  uratio: number;
  /** The strong augmentation and its views per step (FixMatch). */
  strong?: { augmentation: Augmentation; views: number };
}

export interface FeederState {
  labeled: BatcherState;
  unlabeled: BatcherState | null;
}

/**
 * Builds the batch tensors of one step: augmented labelled images, the unlabelled views (weak,
 * and strong when asked), the dataset indices of every row, and, when the strong augmentation is
 * adaptive, probe images for its update.
 */
export class InputFeeder {
  private readonly size: number;
  readonly labeled: Batcher;
  readonly unlabeled: Batcher | null;
  /** The probed part of the strong augmentation, if any. */
  private readonly probed: ProbedAugmentation | null;

  constructor(
    private readonly data: TrainingData,
    private readonly augment: Augmentation,
    private readonly rng: Rng,
    private readonly opts: FeederOptions,
  ) {
    this.size = imageSize(data.shape);
    this.labeled = new Batcher(data.labeled.count, rng);
    const usesUnlabeled = opts.views > 0 || (opts.strong?.views ?? 0) > 0;
    this.unlabeled = usesUnlabeled && data.unlabeled ? new Batcher(data.unlabeled.count, rng) : null;
    this.probed = (opts.strong && statefulParts(opts.strong.augmentation).find(isProbed)) || null;
  }

  private augmented(set: ImageSet, idx: Int32Array, aug: Augmentation): tf.Tensor4D {
    const { height: h, width: w, channels: c } = this.data.shape;
    const buf = new Float32Array(idx.length * this.size);
    for (let i = 0; i < idx.length; i++) aug.apply(set.images, idx[i] * this.size, buf, i * this.size, this.data.shape, this.rng);
    return tf.tensor4d(buf, [idx.length, h, w, c]);
  }

  /** FixMatch probes the weakly augmented labelled images, each under a fresh probe policy. */
  private probe(idx: Int32Array, labels: Int32Array, aug: ProbedAugmentation): Probe {
    const { height: h, width: w, channels: c } = this.data.shape;
    const buf = new Float32Array(idx.length * this.size);
    const weak = new Uint8Array(this.size);
    const policies: unknown[] = [];
    for (let i = 0; i < idx.length; i++) {
      this.augment.applyU8(this.data.labeled.images, idx[i] * this.size, weak, 0, this.data.shape, this.rng);
      const policy = aug.probePolicy(this.rng);
      u8ToFloat(aug.applyPolicyU8(weak, this.data.shape, policy, this.rng), buf, i * this.size);
      policies.push(policy);
    }
    return { images: tf.tensor4d(buf, [idx.length, h, w, c]), labels, policies, augmentation: aug };
  }

  next(batch: number): { inputs: Inputs; probe: Probe | null } {
    const li = this.labeled.next(batch);
    const labels = new Int32Array(batch);
    for (let i = 0; i < batch; i++) labels[i] = this.data.labeled.labels[li[i]];
    const x = this.augmented(this.data.labeled, li, this.augment);
    const inputs: Inputs = { x, labels: tf.tensor1d(labels, 'int32'), u: [], labeledIndex: li };
    const strong = this.opts.strong;
    if (this.unlabeled && this.data.unlabeled) {
      const ui = this.unlabeled.next(batch * this.opts.uratio);
      inputs.unlabeledIndex = ui;
      for (let v = 0; v < this.opts.views; v++) inputs.u.push(this.augmented(this.data.unlabeled, ui, this.augment));
      if (strong && strong.views > 0) {
        inputs.uStrong = [];
        for (let v = 0; v < strong.views; v++) inputs.uStrong.push(this.augmented(this.data.unlabeled, ui, strong.augmentation));
      }
    }
    const probe = this.probed ? this.probe(li, labels, this.probed) : null;
    return { inputs, probe };
  }

  getState(): FeederState {
    return { labeled: this.labeled.getState(), unlabeled: this.unlabeled?.getState() ?? null };
  }

  setState(s: FeederState): void {
    this.labeled.setState(s.labeled);
    if (this.unlabeled && s.unlabeled) this.unlabeled.setState(s.unlabeled);
  }
}

/** Folds a step's probe predictions (EMA weights, inference mode, as FixMatch does) into the augmentation. */
export async function updateFromProbe(probe: Probe, forward: (x: tf.Tensor4D) => tf.Tensor2D): Promise<void> {
  const probs = tf.tidy(() => tf.softmax(forward(probe.images)));
  const p = (await probs.data()) as Float32Array;
  probs.dispose();
  probe.images.dispose();
  const k = p.length / probe.labels.length;
  for (let i = 0; i < probe.labels.length; i++) {
    let err = 0;
    for (let c = 0; c < k; c++) err += Math.abs(p[i * k + c] - (c === probe.labels[i] ? 1 : 0));
    probe.augmentation.update(probe.policies[i], 1 - 0.5 * err);
  }
}
