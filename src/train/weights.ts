import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random';
import type { Model, ParamSpec } from '../models/layers';

/**
 * The variables of one training run: trainable parameters, their exponential moving average
 * (used for evaluation, as the originals do), and batch-norm moving statistics. Initial values
 * are drawn in JS from the run's seeded generator so the same seed gives the same network on
 * every backend.
 */
export class WeightStore {
  readonly params = new Map<string, tf.Variable>();
  readonly ema = new Map<string, tf.Variable>();
  readonly state = new Map<string, tf.Variable>();
  readonly decayed: string[];

  constructor(readonly model: Model, rng: Rng) {
    const initial = new Map<string, Float32Array>();
    for (const spec of model.params) initial.set(spec.name, initialValues(spec, rng, initial));
    for (const spec of model.params) {
      const values = initial.get(spec.name)!;
      this.params.set(spec.name, tf.variable(tf.tensor(values, spec.shape, 'float32'), true, `p/${spec.name}`));
      this.ema.set(spec.name, tf.variable(tf.tensor(values, spec.shape, 'float32'), false, `ema/${spec.name}`));
    }
    for (const s of model.state) {
      const t = s.init === 'ones' ? tf.ones(s.shape) : tf.zeros(s.shape);
      this.state.set(s.name, tf.variable(t, false, `s/${s.name}`));
      t.dispose();
    }
    this.decayed = model.params.filter((p) => p.decay).map((p) => p.name);
  }

  trainable(): tf.Variable[] {
    return [...this.params.values()];
  }

  paramCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /** Folds recorded batch statistics into the moving averages (momentum 0.999, as the originals). */
  applyBnUpdates(updates: Map<string, tf.Tensor>, momentum = 0.999): void {
    tf.tidy(() => {
      for (const [name, batchValue] of updates) {
        const v = this.state.get(name);
        if (!v) throw new Error(`batch-norm update for unknown state ${name}`);
        v.assign(tf.add(tf.mul(v, momentum), tf.mul(batchValue, 1 - momentum)));
      }
    });
  }

  updateEma(decay: number): void {
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const e = this.ema.get(name)!;
        e.assign(tf.add(tf.mul(e, decay), tf.mul(p, 1 - decay)));
      }
    });
  }

  /** Decoupled weight decay on kernels: w <- w * (1 - wd*lr) after each optimiser step. */
  decayKernels(factor: number): void {
    if (factor === 1) return;
    tf.tidy(() => {
      for (const name of this.decayed) {
        const p = this.params.get(name)!;
        p.assign(tf.mul(p, factor));
      }
    });
  }

  /** sum(w^2)/2 over the kernels (TF's l2_loss), the L2 term FixMatch adds to its loss; biases and BN parameters are left out. */
  kernelL2(): tf.Scalar {
    if (this.decayed.length === 0) return tf.scalar(0);
    return tf.mul(tf.addN(this.decayed.map((n) => tf.sum(tf.square(this.params.get(n)!)))), 0.5) as tf.Scalar;
  }

  dispose(): void {
    for (const m of [this.params, this.ema, this.state]) for (const v of m.values()) v.dispose();
  }
}

function initialValues(spec: ParamSpec, rng: Rng, done: Map<string, Float32Array>): Float32Array {
  const size = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  const init = spec.init;
  const normal = (std: number) => {
    for (let i = 0; i < size; i++) out[i] = rng.standardNormal() * std;
  };
  switch (init.kind) {
    case 'zeros':
      break;
    case 'ones':
      out.fill(1);
      break;
    case 'normal':
      normal(init.std);
      break;
    case 'he_fanout': {
      // std = 1/sqrt(0.5 * k*k * f_out): the originals' conv initialiser
      const [kh, kw, , fout] = spec.shape;
      normal(Math.sqrt(2 / (kh * kw * fout)));
      break;
    }
    case 'glorot_normal': {
      // truncated at two standard deviations, with the variance correction Keras applies
      const [fin, fout] = spec.shape;
      const std = Math.sqrt(2 / (fin + fout)) / 0.8796256610342398;
      for (let i = 0; i < size; i++) {
        let z: number;
        do z = rng.standardNormal();
        while (Math.abs(z) > 2);
        out[i] = z * std;
      }
      break;
    }
    case 'norm_of': {
      const v = done.get(init.param);
      if (!v) throw new Error(`${spec.name}: norm_of ${init.param} must be declared first`);
      const cout = spec.shape[0];
      const sq = new Float64Array(cout);
      for (let i = 0; i < v.length; i++) sq[i % cout] += v[i] * v[i];
      for (let j = 0; j < cout; j++) out[j] = Math.sqrt(sq[j]);
      break;
    }
  }
  return out;
}
