import * as tf from '@tensorflow/tfjs';
import type { Optimizer } from './optimizer';

/**
 * SGD with Nesterov momentum, as TensorFlow's MomentumOptimizer(use_nesterov=True) that FixMatch
 * trains with: accum <- momentum * accum + g; w <- w - lr * (g + momentum * accum).
 * Weight decay is not applied here (FixMatch adds an L2 term to the loss instead).
 */
export class NesterovSgd implements Optimizer {
  readonly kind = 'sgd' as const;
  readonly accum = new Map<string, tf.Variable>();
  t = 0;

  constructor(
    params: Map<string, tf.Variable>,
    public lr: number,
    readonly momentum = 0.9,
  ) {
    for (const [name, p] of params) this.accum.set(name, tf.variable(tf.zerosLike(p), false, `sgd_momentum/${name}`));
  }

  apply(params: Map<string, tf.Variable>, grads: Record<string, tf.Tensor>, lr = this.lr): void {
    this.t++;
    tf.tidy(() => {
      for (const [name, p] of params) {
        const g = grads[p.name];
        if (!g) continue;
        const a = this.accum.get(name)!;
        const a1 = tf.add(tf.mul(a, this.momentum), g);
        a.assign(a1);
        p.assign(tf.sub(p, tf.mul(tf.add(g, tf.mul(a1, this.momentum)), lr)));
      }
    });
  }

  slots(): Record<string, Map<string, tf.Variable>> {
    return { sgd_momentum: this.accum };
  }

  dispose(): void {
    for (const x of this.accum.values()) x.dispose();
  }
}
