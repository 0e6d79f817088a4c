import * as tf from '@tensorflow/tfjs';

/**
 * Scalar tensors by value, made once. A plain number in a tf op becomes a new tensor each call:
 * on the native backend an allocation and a copy per use, for constants (momenta, decays) that
 * never change over a run.
 */
export class ScalarCache {
  private readonly byValue = new Map<number, tf.Scalar>();

  get(value: number): tf.Scalar {
    let s = this.byValue.get(value);
    if (!s) this.byValue.set(value, (s = tf.keep(tf.scalar(value, 'float32'))));
    return s;
  }

  dispose(): void {
    tf.dispose([...this.byValue.values()]);
    this.byValue.clear();
  }
}
