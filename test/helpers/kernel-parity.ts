import * as tf from '@tensorflow/tfjs';
import { outputsOn } from './backends';

/** Shared by the kernel tests that compare a backend's training kernels with the plain CPU backend. */

export type Shape = number[];

/** A tiny deterministic generator in [-0.5, 0.5): test inputs must not depend on any backend's RNG. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

export function values(shape: Shape, seed: number, shift = 0): Float32Array {
  const next = lcg(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = next() + shift;
  return out;
}

/**
 * `f` and the gradients of sum(f(inputs) * w) for a fixed random w, i.e. a generic upstream
 * gradient; inputs are seeded values unless given.
 */
export function gradsOf(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: { shape: Shape; shift?: number; values?: Float32Array }[], seed: number): () => tf.Tensor[] {
  return () => {
    const xs = inputs.map((s, i) => tf.tensor(s.values ?? values(s.shape, seed + i, s.shift ?? 0), s.shape));
    const y = f(...xs);
    const w = tf.tensor(values(y.shape, seed + 100), y.shape);
    const g = tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(f(...a), w)))(xs);
    return [y, ...g];
  };
}

/** Largest |a - b| / max(1, |b|): absolute for small values, relative for large ones. */
export function maxDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
    if (d > m) m = d;
  }
  return m;
}

/**
 * Runs `fn` on the CPU backend and on `backend` (each creating its own tensors after the switch),
 * records the largest difference in `worst`, and fails above `tol`.
 */
export async function expectSameAsCpu(backend: string, name: string, fn: () => tf.Tensor[], tol: number, worst: Map<string, number>): Promise<void> {
  const cpu = await outputsOn('cpu', fn);
  const other = await outputsOn(backend, fn);
  expect(other.length).toBe(cpu.length);
  let m = 0;
  cpu.forEach((c, i) => {
    m = Math.max(m, maxDiff(other[i], c));
  });
  worst.set(name, m);
  if (!(m <= tol)) throw new Error(`${name}: ${backend} and cpu differ by ${m}`);
}

/** One conv2d filter gradient on the current backend (the op wasm lacks out of the box), read with data(): webgpu cannot read synchronously. */
export async function convGradient(): Promise<Float32Array> {
  const dw = tf.tidy(() => {
    const x = tf.linspace(-1, 1, 2 * 6 * 6 * 3).reshape([2, 6, 6, 3]) as tf.Tensor4D;
    const w = tf.linspace(-0.5, 0.5, 3 * 3 * 3 * 4).reshape([3, 3, 3, 4]) as tf.Tensor4D;
    return tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').square().sum())([x, w])[1];
  });
  const v = (await dw.data()) as Float32Array;
  dw.dispose();
  return v;
}
