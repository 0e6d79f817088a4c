import * as tf from '@tensorflow/tfjs';
import { crossEntropy } from '../train/ops';
import { linearRamp } from './mixmatch';
import type { Algorithm, HParamSpec, Inputs, StepContext } from './types';

/**
 * The Pi-model (Laine & Aila 2017) as the Google MixMatch code trains it (pi_model.py,
 * workflow-spec.md 4.3): two augmentations of the unlabelled batch; the raw network's softmax on the
 * first, without gradient, is the target for its softmax on the second; squared error averaged
 * over classes and batch, weighted by consistency_weight ramped up over the first warmup_pos of
 * training. `smoothing` is in the original's kwargs (so in its run names) but never applied.
 *
 * The helpers below are the parts the Google consistency baselines share (ict.py, mean_teacher.py,
 * pseudo_label.py, vat.py); they live here because every file of this folder is an algorithm.
 */

export const WARMUP_POS: HParamSpec = {
  name: 'warmup_pos',
  type: 'float',
  default: 0.4,
  help: 'fraction of train_kimg over which the unlabelled loss weight ramps up linearly from 0',
};

export function smoothingUnused(def: number): HParamSpec {
  return { name: 'smoothing', type: 'float', default: def, help: 'label smoothing: recorded in the run name as the original does, never applied' };
}

/** warmup(t) = clip(images seen / (warmup_pos * total images), 0, 1). */
export function warmup(ctx: StepContext): number {
  return linearRamp(ctx.imagesSeen, Number(ctx.hp.warmup_pos) * ctx.totalImages);
}

/** Mean cross-entropy of rows of (soft) target distributions against logits. */
export function meanCrossEntropy(targets: tf.Tensor2D, logits: tf.Tensor2D): tf.Scalar {
  return tf.mean(crossEntropy(targets, logits)) as tf.Scalar;
}

/**
 * The labelled term every baseline shares: the first classifier call, on the labelled batch, is
 * the one whose batch-norm statistics the originals keep.
 */
export function labelledCrossEntropy(ctx: StepContext, inputs: Inputs): tf.Scalar {
  const logits = ctx.forward(inputs.x, { training: true, updateBn: true });
  return meanCrossEntropy(tf.oneHot(inputs.labels, ctx.nclass).toFloat() as tf.Tensor2D, logits);
}

/** Squared difference of probabilities, averaged over classes and then over the batch. */
export function softmaxMse(target: tf.Tensor2D, logits: tf.Tensor2D): tf.Scalar {
  return tf.mean(tf.square(tf.sub(target, tf.softmax(logits)))) as tf.Scalar;
}

export const piModel: Algorithm = {
  name: 'pi_model',
  className: 'PiModel',
  description: 'Pi-model: consistency between two augmentations of each unlabelled image (Laine & Aila 2017)',
  tagStyle: 'google',
  hparams: [
    { name: 'consistency_weight', type: 'float', default: 10, help: 'weight of the consistency loss after the ramp' },
    WARMUP_POS,
    smoothingUnused(0.1),
  ],
  views: () => 2,
  targets(ctx, inputs) {
    // the teacher is the same raw network, in training mode, with its gradient stopped
    return { teacher: tf.softmax(ctx.forward(inputs.u[0], { training: true })) };
  },
  loss(ctx, inputs, targets) {
    const xe = labelledCrossEntropy(ctx, inputs);
    const pm = softmaxMse(targets.teacher as tf.Tensor2D, ctx.forward(inputs.u[1], { training: true }));
    const loss = tf.add(xe, tf.mul(pm, warmup(ctx) * Number(ctx.hp.consistency_weight))) as tf.Scalar;
    return { loss, scalars: { 'losses/xe': xe, 'losses/pm': pm } };
  },
};
