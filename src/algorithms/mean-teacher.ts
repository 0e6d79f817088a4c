import * as tf from '@tensorflow/tfjs';
import { WARMUP_POS, labelledCrossEntropy, smoothingUnused, softmaxMse, warmup } from './pi-model';
import type { Algorithm } from './types';

/**
 * Mean Teacher (Tarvainen & Valpola 2017) as the Google MixMatch code trains it (mean_teacher.py,
 * workflow-spec.md 4.3): the EMA network (batch norm in training mode, its statistics discarded)
 * predicts the first augmentation of the unlabelled batch; those probabilities, without gradient,
 * are the target for the raw network's softmax on the second augmentation. Squared error averaged
 * over classes and batch, weighted by consistency_weight ramped over warmup_pos of training.
 * The EMA is the run's evaluation EMA (--ema, 0.999). `smoothing` is only in the run name.
 * Google's default wd is kept (0.02); RealMix's copy and the CIFAR-10 table use 0.2.
 */
export const meanTeacher: Algorithm = {
  name: 'mean_teacher',
  className: 'MeanTeacher',
  description: 'Mean Teacher: consistency with the predictions of the weight-EMA network (Tarvainen & Valpola 2017)',
  tagStyle: 'google',
  hparams: [
    { name: 'consistency_weight', type: 'float', default: 50, help: 'weight of the consistency loss after the ramp' },
    WARMUP_POS,
    smoothingUnused(0.001),
  ],
  views: () => 2,
  targets(ctx, inputs) {
    return { teacher: tf.softmax(ctx.forward(inputs.u[0], { training: true, ema: true })) };
  },
  loss(ctx, inputs, targets) {
    const xe = labelledCrossEntropy(ctx, inputs);
    const mt = softmaxMse(targets.teacher as tf.Tensor2D, ctx.forward(inputs.u[1], { training: true }));
    const loss = tf.add(xe, tf.mul(mt, warmup(ctx) * Number(ctx.hp.consistency_weight))) as tf.Scalar;
    return { loss, scalars: { 'losses/xe': xe, 'losses/mt': mt } };
  },
};
