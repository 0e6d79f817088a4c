import * as tf from '@tensorflow/tfjs';
import { flatVariable } from './flat';
import type { Optimizer } from './optimizer';
import { ScalarCache } from './scalars';

/**
 * Adam with TensorFlow's defaults (beta1 0.9, beta2 0.999, epsilon 1e-8), as the originals use
 * with a constant learning rate (a decayed one can be passed per step). Written out rather than
 * tf.train.adam so its whole state (moments and step count) lives in variables that a checkpoint
 * can save and restore exactly. It updates the flat parameter vector (./flat) in a dozen kernels.
 */
export class Adam implements Optimizer {
  readonly kind = 'adam' as const;
  readonly m: tf.Variable;
  readonly v: tf.Variable;
  t = 0;
  private readonly constants = new ScalarCache();

  constructor(
    size: number,
    public lr: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-8,
  ) {
    this.m = flatVariable(size, false);
    this.v = flatVariable(size, false);
  }

  apply(param: tf.Variable, grad: tf.Tensor, lr = this.lr): void {
    this.t++;
    // TF folds the bias corrections into the step size
    const alpha = (lr * Math.sqrt(1 - this.beta2 ** this.t)) / (1 - this.beta1 ** this.t);
    const c = (x: number) => this.constants.get(x);
    tf.tidy(() => {
      const m1 = tf.add(tf.mul(this.m, c(this.beta1)), tf.mul(grad, c(1 - this.beta1)));
      const v1 = tf.add(tf.mul(this.v, c(this.beta2)), tf.mul(tf.square(grad), c(1 - this.beta2)));
      this.m.assign(m1);
      this.v.assign(v1);
      param.assign(tf.sub(param, tf.div(tf.mul(m1, tf.scalar(alpha)), tf.add(tf.sqrt(v1), c(this.epsilon)))));
    });
  }

  slots(): Record<string, tf.Variable> {
    return { adam_m: this.m, adam_v: this.v };
  }

  dispose(): void {
    tf.dispose([this.m, this.v]);
    this.constants.dispose();
  }
}
