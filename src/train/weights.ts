import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random';
import type { Model, ParamSpec } from '../models/layers';
import type { Checkpoint, HostTensor } from './checkpoint';
import { assignValues, FlatLayout, flatVariable } from './flat';
import { ScalarCache } from './scalars';

/** The three kinds of weight a run keeps; also their checkpoint group names. */
export type WeightGroup = 'param' | 'ema' | 'state';
export const WEIGHT_GROUPS: readonly WeightGroup[] = ['param', 'ema', 'state'];

/**
 * The variables of one training run: trainable parameters, their exponential moving average
 * (used for evaluation, as the originals do), and batch-norm moving statistics. Each kind is one
 * flat variable (see ./flat): the per-step updates are a few large kernels, and the model gets
 * per-name tensors cut from it. Initial values are drawn in JS from the run's seeded generator so
 * the same seed gives the same network on every backend.
 */
export class WeightStore {
  /** Where each parameter sits in `param`, `ema` and the optimiser's slots. */
  readonly layout: FlatLayout;
  readonly stateLayout: FlatLayout;
  readonly param: tf.Variable;
  readonly ema: tf.Variable;
  readonly state: tf.Variable;
  /** Parameters that weight decay applies to (kernels; not biases or batch-norm parameters). */
  readonly decayed: string[];
  /** 1 on decayed parameters, 0 elsewhere. */
  private readonly kernelMask: tf.Tensor1D;
  private decayFactor: { factor: number; values: tf.Tensor1D } | null = null;
  /** Per group, the per-name cut and the data it was cut from. */
  private readonly cached = new Map<WeightGroup, { from: tf.DataId; views: Map<string, tf.Tensor> }>();
  private readonly constants = new ScalarCache();

  constructor(readonly model: Model, rng: Rng) {
    const initial = new Map<string, Float32Array>();
    for (const spec of model.params) initial.set(spec.name, initialValues(spec, rng, initial));
    this.layout = new FlatLayout(model.params);
    this.stateLayout = new FlatLayout(model.state);
    const values = this.layout.pack((e) => initial.get(e.name)!);
    this.param = flatVariable(values, true);
    this.ema = flatVariable(values, false);
    this.state = flatVariable(this.stateLayout.pack((e) => new Float32Array(e.size).fill(model.state.find((s) => s.name === e.name)!.init === 'ones' ? 1 : 0)), false);
    this.decayed = model.params.filter((p) => p.decay).map((p) => p.name);
    const decayed = new Set(this.decayed);
    this.kernelMask = tf.tensor1d(this.layout.pack((e) => new Float32Array(e.size).fill(decayed.has(e.name) ? 1 : 0)), 'float32');
  }

  of(group: WeightGroup): tf.Variable {
    return group === 'param' ? this.param : group === 'ema' ? this.ema : this.state;
  }

  private layoutOf(group: WeightGroup): FlatLayout {
    return group === 'state' ? this.stateLayout : this.layout;
  }

  trainable(): tf.Variable[] {
    return [this.param];
  }

  paramCount(): number {
    return this.layout.total;
  }

  /**
   * Per-name tensors of a group, kept until the group changes: evaluation and forward passes
   * outside a gradient tape share one cut per update. Inside a tape use `paramViews()`. An assign
   * gives a variable new data, so a cut of other data is stale, whoever assigned.
   */
  views(group: WeightGroup): Map<string, tf.Tensor> {
    const variable = this.of(group);
    const c = this.cached.get(group);
    if (c && c.from === variable.dataId) return c.views;
    this.dropCut(group);
    const layout = this.layoutOf(group);
    const tensors = tf.tidy(() => layout.split(variable));
    const views = new Map(layout.entries.map((e, i) => [e.name, tf.keep(tensors[i])]));
    this.cached.set(group, { from: variable.dataId, views });
    return views;
  }

  /** Fresh per-name parameter tensors, cut on the current tape so gradients reach `param`; within the caller's scope. */
  paramViews(): Map<string, tf.Tensor> {
    const tensors = this.layout.split(this.param);
    return new Map(this.layout.entries.map((e, i) => [e.name, tensors[i]]));
  }

  private dropCut(group: WeightGroup): void {
    const c = this.cached.get(group);
    if (c) tf.dispose([...c.views.values()]);
    this.cached.delete(group);
  }

  /** Folds recorded batch statistics into the moving averages (momentum 0.999, as the originals). */
  applyBnUpdates(updates: Map<string, tf.Tensor>, momentum = 0.999): void {
    if (updates.size === 0) return;
    for (const name of updates.keys()) if (!this.stateLayout.entry(name)) throw new Error(`batch-norm update for unknown state ${name}`);
    const m = this.constants.get(momentum);
    const m1 = this.constants.get(1 - momentum);
    tf.tidy(() => {
      if (updates.size === this.stateLayout.entries.length) {
        const batch = this.stateLayout.concat((e) => updates.get(e.name)!);
        this.state.assign(tf.add(tf.mul(this.state, m), tf.mul(batch, m1)));
        return;
      }
      // some statistics were not recorded (a layer the loss did not reach): those stay as they are
      const current = this.views('state');
      this.state.assign(
        this.stateLayout.concat((e) => {
          const u = updates.get(e.name);
          return u ? tf.add(tf.mul(current.get(e.name)!, m), tf.mul(u, m1)) : current.get(e.name)!;
        }),
      );
    });
  }

  updateEma(decay: number): void {
    const d = this.constants.get(decay);
    const d1 = this.constants.get(1 - decay);
    tf.tidy(() => this.ema.assign(tf.add(tf.mul(this.ema, d), tf.mul(this.param, d1))));
  }

  /** Decoupled weight decay on kernels: w <- w * (1 - wd*lr) after each optimiser step. */
  decayKernels(factor: number): void {
    if (factor === 1 || this.decayed.length === 0) return;
    if (this.decayFactor?.factor !== factor) {
      // built on the host so kernels get exactly float32(factor), as a per-variable multiply did
      this.decayFactor?.values.dispose();
      const decayed = new Set(this.decayed);
      this.decayFactor = { factor, values: tf.tensor1d(this.layout.pack((e) => new Float32Array(e.size).fill(decayed.has(e.name) ? factor : 1)), 'float32') };
    }
    const f = this.decayFactor.values;
    tf.tidy(() => this.param.assign(tf.mul(this.param, f)));
  }

  /** sum(w^2)/2 over the kernels (TF's l2_loss), the L2 term FixMatch adds to its loss; biases and BN parameters are left out. */
  kernelL2(): tf.Scalar {
    if (this.decayed.length === 0) return tf.scalar(0);
    // no tidy: on a gradient tape the intermediates are needed by the backward pass
    return tf.mul(tf.sum(tf.mul(tf.square(this.param), this.kernelMask)), 0.5) as tf.Scalar;
  }

  /** The three groups as host arrays named per variable, for a checkpoint. */
  async hostGroups(): Promise<Record<WeightGroup, Map<string, HostTensor>>> {
    const out = {} as Record<WeightGroup, Map<string, HostTensor>>;
    for (const g of WEIGHT_GROUPS) out[g] = this.layoutOf(g).hostGroup((await this.of(g).data()) as Float32Array);
    return out;
  }

  /** Loads groups from a checkpoint (a missing or misshapen tensor is a user error naming it). */
  restore(ck: Checkpoint, file: string, groups: readonly WeightGroup[] = WEIGHT_GROUPS): void {
    for (const g of groups) {
      assignValues(this.of(g), this.layoutOf(g).readGroup(ck, g, file));
    }
  }

  dispose(): void {
    for (const g of WEIGHT_GROUPS) this.dropCut(g);
    tf.dispose([this.param, this.ema, this.state, this.kernelMask]);
    this.decayFactor?.values.dispose();
    this.constants.dispose();
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
