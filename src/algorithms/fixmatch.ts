import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { sparseCrossEntropy, stopGradient } from '../train/ops';
import type { Algorithm, HParamValue } from './types';

/**
 * FixMatch (Sohn et al. 2020) as its authors' code trains it: the labelled batch and uratio times
 * as many unlabelled images, each unlabelled image seen weakly (flip and shift) and strongly
 * augmented (the weak augmentation, then RandAugment or CTAugment); all of them in one forward
 * pass. The pseudo-label is the argmax of the weak view's prediction, used only where its
 * probability reaches `confidence`; the strong view is trained on it with cross-entropy.
 * Nesterov SGD with cosine decay and an L2 term on the kernels (seeds/004), EMA for evaluation.
 */

/** Cross-entropy of the strong logits against the weak view's confident argmax; also the mask. */
export function fixmatchUnlabelledLoss(logitsWeak: tf.Tensor2D, logitsStrong: tf.Tensor2D, confidence: number): { xeu: tf.Scalar; mask: tf.Tensor1D } {
  const pseudo = tf.softmax(stopGradient(logitsWeak));
  const mask = tf.cast(tf.greaterEqual(tf.max(pseudo, 1), confidence), 'float32') as tf.Tensor1D;
  const xeu = tf.mean(tf.mul(sparseCrossEntropy(tf.argMax(pseudo, 1) as tf.Tensor1D, logitsStrong), mask)) as tf.Scalar;
  return { xeu, mask };
}

function validate(hp: Record<string, HParamValue>): void {
  const c = Number(hp.confidence);
  if (!(c >= 0 && c <= 1)) throw new UserError(`confidence must be a probability in [0, 1], got ${c}`);
  if (Number(hp.uratio) < 1) throw new UserError(`uratio must be at least 1, got ${hp.uratio}`);
  if (String(hp.augment_strong).trim() === '') throw new UserError('augment_strong must name an augmentation, e.g. ctaugment or randaugment');
}

export const fixmatch: Algorithm = {
  name: 'fixmatch',
  className: 'FixMatch',
  description: 'FixMatch: confident pseudo-labels from weak views train strong views (Sohn et al. 2020)',
  tagStyle: 'google',
  hparams: [
    { name: 'confidence', type: 'float', default: 0.95, help: 'confidence threshold (tau) a weak view\'s top probability must reach to become a pseudo-label' },
    { name: 'uratio', type: 'int', default: 7, help: 'unlabelled images per labelled image in a batch (mu)' },
    { name: 'wu', type: 'float', default: 1, help: 'weight of the unlabelled loss (lambda_u)' },
    {
      name: 'augment_strong',
      type: 'string',
      default: 'ctaugment',
      inName: 'if-changed',
      help: 'strong augmentation, applied after the weak one (--augment): ctaugment (learns from probes of the labelled batch) or randaugment',
    },
  ],
  sharedDefaults: { lr: 0.03, wd: 0.0005, optimizer: 'sgd', momentum: 0.9, lr_decay: 'cosine', wd_mode: 'l2' },
  views: () => 1,
  uratio: (hp) => Number(hp.uratio),
  strong: (hp) => ({ views: 1, augmentation: String(hp.augment_strong) }),
  validate,
  loss(ctx, inputs) {
    const b = inputs.x.shape[0];
    const weak = inputs.u[0];
    const strong = inputs.uStrong![0];
    const n = weak.shape[0];
    // one pass over everything, so batch norm sees (and keeps) the statistics of the whole batch
    const logits = ctx.forward(tf.concat([inputs.x, weak, strong], 0) as tf.Tensor4D, { training: true, updateBn: true });
    const logitsX = tf.slice(logits, 0, b) as tf.Tensor2D;
    const logitsWeak = tf.slice(logits, b, n) as tf.Tensor2D;
    const logitsStrong = tf.slice(logits, b + n, n) as tf.Tensor2D;
    const xe = tf.mean(sparseCrossEntropy(inputs.labels, logitsX)) as tf.Scalar;
    const { xeu, mask } = fixmatchUnlabelledLoss(logitsWeak, logitsStrong, Number(ctx.hp.confidence));
    const loss = tf.add(xe, tf.mul(xeu, Number(ctx.hp.wu))) as tf.Scalar;
    return { loss, scalars: { 'losses/xe': xe, 'losses/xeu': xeu, 'monitors/mask': tf.mean(mask) as tf.Scalar } };
  },
};
