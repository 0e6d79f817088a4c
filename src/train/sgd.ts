import * as tf from '@tensorflow/tfjs';
import { flatVariable } from './flat';
import type { Optimizer } from './optimizer';
import { ScalarCache } from './scalars';

/**
 * SGD with Nesterov momentum, as TensorFlow's MomentumOptimizer(use_nesterov=True) that FixMatch
 * trains with: accum <- momentum * accum + g; w <- w - lr * (g + momentum * accum).
 * Weight decay is not applied here (FixMatch adds an L2 term to the loss instead).
 */
export class NesterovSgd implements Optimizer {
  readonly kind = 'sgd' as const;
  readonly accum: tf.Variable;
  t = 0;
  private readonly constants = new ScalarCache();

  constructor(
    size: number,
    public lr: number,
    readonly momentum = 0.9,
  ) {
    this.accum = flatVariable(size, false);
  }

  apply(param: tf.Variable, grad: tf.Tensor, lr = this.lr): void {
    this.t++;
    const mom = this.constants.get(this.momentum);
    tf.tidy(() => {
      const a1 = tf.add(tf.mul(this.accum, mom), grad);
      this.accum.assign(a1);
      param.assign(tf.sub(param, tf.mul(tf.add(grad, tf.mul(a1, mom)), tf.scalar(lr))));
    });
  }

  slots(): Record<string, tf.Variable> {
    return { sgd_momentum: this.accum };
  }

  dispose(): void {
    this.accum.dispose();
    this.constants.dispose();
  }
}
