import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import type { Checkpoint, HostTensor } from './checkpoint';

/**
 * Many named tensors kept end to end in one 1-D tensor. The optimiser, the EMA, weight decay and
 * the batch-norm averages then cost a handful of large element-wise kernels per step instead of a
 * dozen small ones per variable: on the native CPU backend the per-kernel overhead, not the
 * arithmetic, was most of the update (WRN-28-2: about 1,800 update kernels per step). The model
 * still sees one tensor per name, cut from the flat one once per use.
 */
export interface FlatEntry {
  name: string;
  shape: number[];
  size: number;
  offset: number;
}

export class FlatLayout {
  readonly entries: FlatEntry[];
  readonly total: number;
  private readonly byName = new Map<string, FlatEntry>();

  constructor(specs: ReadonlyArray<{ name: string; shape: number[] }>) {
    let offset = 0;
    this.entries = specs.map((s) => {
      const size = s.shape.reduce((a, b) => a * b, 1);
      const e = { name: s.name, shape: [...s.shape], size, offset };
      offset += size;
      return e;
    });
    this.total = offset;
    for (const e of this.entries) this.byName.set(e.name, e);
  }

  entry(name: string): FlatEntry | undefined {
    return this.byName.get(name);
  }

  /** Values laid out end to end: `valueOf(entry)` gives each entry's values, of its size. */
  pack(valueOf: (e: FlatEntry) => ArrayLike<number>): Float32Array {
    const out = new Float32Array(this.total);
    for (const e of this.entries) out.set(valueOf(e), e.offset);
    return out;
  }

  /** One tensor per entry, in order, cut from `flat` (one split, then reshapes); call inside a tidy. */
  split(flat: tf.Tensor): tf.Tensor[] {
    if (this.entries.length === 0) return [];
    if (this.entries.length === 1) return [tf.reshape(flat, this.entries[0].shape)];
    const pieces = tf.split(flat, this.entries.map((e) => e.size));
    // the 1-D pieces are left to the caller's tidy: on a tape, the reshape's gradient needs them
    return pieces.map((p, i) => (this.entries[i].shape.length === 1 ? p : tf.reshape(p, this.entries[i].shape)));
  }

  /** The flat tensor of one tensor per entry (`valueOf` in layout order). */
  concat(valueOf: (e: FlatEntry) => tf.Tensor): tf.Tensor1D {
    // a reshape is a kernel call even when it changes nothing: 1-D values go in as they are
    return tf.tidy(() =>
      tf.concat(
        this.entries.map((e) => {
          const t = valueOf(e);
          return t.rank === 1 ? t : tf.reshape(t, [e.size]);
        }),
        0,
      ) as tf.Tensor1D,
    );
  }

  /** Host copies of each entry of `values` (the flat data), named for a checkpoint group. */
  hostGroup(values: Float32Array): Map<string, HostTensor> {
    const out = new Map<string, HostTensor>();
    for (const e of this.entries) out.set(e.name, { shape: e.shape, values: values.subarray(e.offset, e.offset + e.size) });
    return out;
  }

  /** A checkpoint group read back in this layout; a missing or misshapen tensor is a user error naming it. */
  readGroup(ck: Checkpoint, group: string, file: string): Float32Array {
    return this.pack((e) => {
      const t = ck.tensors.get(`${group}/${e.name}`);
      if (!t) throw new UserError(`checkpoint ${file} has no ${group}/${e.name}: it was written by a different model (check --arch/--filters/--scales/--repeat)`);
      if (t.shape.join('x') !== e.shape.join('x')) {
        throw new UserError(`checkpoint ${file}: ${group}/${e.name} has shape ${t.shape.join('x')}, the model expects ${e.shape.join('x')}`);
      }
      return t.values;
    });
  }
}

/** A 1-D variable holding `init` (values, or that many zeros). */
export function flatVariable(init: Float32Array | number, trainable: boolean): tf.Variable {
  const t = typeof init === 'number' ? tf.zeros([init]) : tf.tensor1d(init, 'float32');
  // the variable shares the tensor's data: dropping the tensor leaves it to the variable
  const v = tf.variable(t, trainable);
  t.dispose();
  return v;
}

/** Replaces a variable's value with host data of the same size. */
export function assignValues(v: tf.Variable, values: Float32Array): void {
  tf.tidy(() => v.assign(tf.tensor(values, v.shape, 'float32')));
}
