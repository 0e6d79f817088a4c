import * as tf from '@tensorflow/tfjs';
import { softmaxCrossEntropy } from '../backend/native-kernels';

/**
 * Small tensor helpers the algorithms share.
 */

/**
 * The same values with no path back to the trainable variables (TensorFlow's stop_gradient).
 * tfjs has no such op; a second tensor on the same data, made outside any kernel, is not on the
 * gradient tape, so whatever is computed from it (thresholds, argmax, sorting, comparisons, some of
 * which have no gradient at all in tfjs) is treated as a constant. Disposed like any tensor.
 */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  const engine = tf.engine();
  const alias = engine.makeTensorFromDataId(x.dataId, x.shape, x.dtype) as T;
  engine.backend.incRef(x.dataId);
  return alias;
}

/**
 * Softmax cross-entropy of each row: -sum_c labels_c * log softmax(logits)_c (labels may be soft).
 * One TensorFlow op on the native CPU backend, tfjs's composition elsewhere (../backend/native-kernels).
 */
export function crossEntropy(labels: tf.Tensor2D, logits: tf.Tensor2D): tf.Tensor1D {
  return softmaxCrossEntropy(labels, logits);
}

/** Cross-entropy of each row against integer class labels. */
export function sparseCrossEntropy(labels: tf.Tensor1D, logits: tf.Tensor2D): tf.Tensor1D {
  return crossEntropy(tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]).toFloat() as tf.Tensor2D, logits);
}
