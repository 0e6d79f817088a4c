import * as tf from '@tensorflow/tfjs';
import type { Optimizer } from './optimizer';

/**
 * Adam with TensorFlow's defaults (beta1 0.9, beta2 0.999, epsilon 1e-8), as the originals use
 * with a constant learning rate (a decayed one can be passed per step). Written out rather than
 * tf.train.adam so its whole state (moments and step count) lives in named variables that a
 * checkpoint can save and restore exactly.
 */
export class Adam implements Optimizer {
  readonly kind = 'adam' as const;
  readonly m = new Map<string, tf.Variable>();
  readonly v = new Map<string, tf.Variable>();
  t = 0;

  constructor(
    params: Map<string, tf.Variable>,
    public lr: number,
    readonly beta1 = 0.9,
    readonly beta2 = 0.999,
    readonly epsilon = 1e-8,
  ) {
    for (const [name, p] of params) {
      this.m.set(name, tf.variable(tf.zerosLike(p), false, `adam_m/${name}`));
      this.v.set(name, tf.variable(tf.zerosLike(p), false, `adam_v/${name}`));
    }
  }

  apply(params: Map<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr = this.lr): void {
    this.t++;
    // TF folds the bias corrections into the step size
    const alpha = (lr * Math.sqrt(1 - this.beta2 ** this.t)) / (1 - this.beta1 ** this.t);
    tf.tidy(() => {
      for (const [name, p] of params) {
        const g = grads[p.name];
        if (!g) continue;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const m1 = tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1));
        const v1 = tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2));
        m.assign(m1);
        v.assign(v1);
        p.assign(tf.sub(p, tf.div(tf.mul(m1, alpha), tf.add(tf.sqrt(v1), this.epsilon))));
      }
    });
  }

  slots(): Record<string, Map<string, tf.Variable>> {
    return { adam_m: this.m, adam_v: this.v };
  }

  dispose(): void {
    for (const x of [...this.m.values(), ...this.v.values()]) x.dispose();
  }
}
