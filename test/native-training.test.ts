import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/select';
import { BATCH_NORM_TRAINING_GRAD, nativeBatchNormGrads, nativeBatchNormKernel } from '../src/backend/native-training';
import { BATCH_NORM_TRAINING, batchNormTraining } from '../src/backend/wasm-training';
import { nativeExpected, outputsOn } from './helpers/backends';

/**
 * SslBatchNormTraining on the native backend (FusedBatchNormV3 / FusedBatchNormGradV3) against the
 * stock moments + batchNorm4d path, on native and on cpu. Where this checkout has no native
 * backend, the cpu half still runs: batchNormTraining there must equal the stock path, and the
 * native pieces must stay out of the way.
 */

type Shape = [number, number, number, number];

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

function values(n: number, seed: number, shift = 0, scale = 1): Float32Array {
  const next = lcg(seed);
  return Float32Array.from({ length: n }, () => next() * scale + shift);
}

type Impl = (x: tf.Tensor4D, g: tf.Tensor1D, b: tf.Tensor1D) => { y: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor };

const EPS = 1e-3;
const stock: Impl = (x, g, b) => {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return { y: tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, b, g, EPS), mean, variance };
};
const ours: Impl = (x, g, b) => batchNormTraining(x, g, b, EPS);

/**
 * y, mean, variance, then d/d(x, scale, offset) of sum(y * w) for a fixed w (only y is
 * differentiated, as in ssl's models); with `withStats`, the loss also weighs mean and variance.
 */
function caseOf(impl: Impl, shape: Shape, seed: number, withStats = false): () => tf.Tensor[] {
  return () => {
    const c = shape[3];
    const n = shape.reduce((a, b) => a * b, 1);
    // An offset and a spread per channel, so that the statistics differ between channels.
    const x = tf.add(tf.mul(tf.tensor4d(values(n, seed, 0, 2), shape), tf.tensor1d(values(c, seed + 1, 1.5))), tf.tensor1d(values(c, seed + 2, 0, 4))) as tf.Tensor4D;
    const g = tf.tensor1d(values(c, seed + 3, 1));
    const b = tf.tensor1d(values(c, seed + 4));
    const w = tf.tensor4d(values(n, seed + 5), shape);
    const r = impl(x, g, b);
    const loss = (xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor): tf.Scalar => {
      const o = impl(xx as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D);
      const main = tf.sum(tf.mul(o.y, w));
      return (withStats ? tf.add(main, tf.sub(tf.sum(tf.mul(o.mean, 3)), tf.sum(tf.mul(o.variance, 2)))) : main) as tf.Scalar;
    };
    const grads = tf.grads(loss)([x, g, b]);
    return [r.y, r.mean, r.variance, ...grads];
  };
}
const NAMES = ['y', 'mean', 'variance', 'dx', 'dscale', 'doffset'];


/**
 * max |a - b| / max(1, max |ref|) per tensor: relative to the tensor's scale, absolute where that is
 * below 1 (dx of a one-value batch is 0 in exact arithmetic and rounding noise in float32).
 */
function relDiff(a: Float32Array, ref: Float32Array): number {
  expect(a.length).toBe(ref.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - ref[i]));
    m = Math.max(m, Math.abs(ref[i]));
  }
  return Number.isNaN(d) ? Number.POSITIVE_INFINITY : d / Math.max(m, 1);
}

const TOL = 1e-4;
const worst = new Map<string, number>();

function expectClose(label: string, got: Float32Array[], ref: Float32Array[]): void {
  expect(got.length).toBe(ref.length);
  const diffs = ref.map((r, i) => relDiff(got[i], r));
  worst.set(label, Math.max(...diffs));
  diffs.forEach((d, i) => expect([label, NAMES[i], d <= TOL ? 'ok' : d]).toEqual([label, NAMES[i], 'ok']));
}

const SHAPES: Shape[] = [
  [3, 5, 4, 6],
  [8, 16, 16, 32], // a WRN-28-2 block at batch 8
  [2, 1, 1, 3], // two values per channel
  [1, 1, 1, 4], // one value per channel: zero variance
];

afterAll(() => {
  const lines = [...worst.entries()].map(([k, v]) => `${k.padEnd(60)} ${v.toExponential(2)}`);
  console.log(`batchNormTraining, max |diff| / max(1, max |ref|) over its outputs:\n${lines.join('\n')}`);
});

describe('batchNormTraining on cpu', () => {
  for (const shape of SHAPES) {
    test(`equals moments + batchNorm4d for ${JSON.stringify(shape)}`, async () => {
      const ref = await outputsOn('cpu', caseOf(stock, shape, 11));
      const got = await outputsOn('cpu', caseOf(ours, shape, 11));
      expectClose(`cpu ${shape} vs stock`, got, ref);
    });
  }

  test('with gradients through the statistics too', async () => {
    const ref = await outputsOn('cpu', caseOf(stock, [3, 5, 4, 6], 21, true));
    const got = await outputsOn('cpu', caseOf(ours, [3, 5, 4, 6], 21, true));
    expectClose('cpu stats-loss vs stock', got, ref);
  });

  test('the native pieces stay out of cpu (and wasm)', async () => {
    await selectBackend('cpu');
    const fallback: tf.KernelFunc = () => [];
    expect(nativeBatchNormKernel('cpu', fallback)).toBeUndefined();
    expect(nativeBatchNormKernel('wasm', fallback)).toBeUndefined();
    expect(tf.getKernel(BATCH_NORM_TRAINING_GRAD, 'cpu')).toBeUndefined();
    const t = tf.ones([2, 2, 2, 3]);
    const v = tf.ones([3]);
    expect(nativeBatchNormGrads({ dy: t, dmean: v, dvar: v }, { x: t, scale: v, mean: v, variance: v }, EPS)).toBeNull();
    const x = tf.ones([2, 2, 2, 3]) as tf.Tensor4D;
    const profile = await tf.profile(() => tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(batchNormTraining(a as tf.Tensor4D, v as tf.Tensor1D, v as tf.Tensor1D, EPS).y))(x)));
    expect(profile.kernels.map((k) => k.name)).not.toContain(BATCH_NORM_TRAINING_GRAD);
    tf.dispose([t, v, x]);
  });
});

const native = nativeExpected();

describe('batchNormTraining on native TensorFlow', () => {
  // Defined only where this checkout has a native build; elsewhere the last test checks the refusal.
  const nativeTest = native ? test : (): void => undefined;

  for (const shape of SHAPES) {
    nativeTest(`equals moments + batchNorm4d on native and on cpu for ${JSON.stringify(shape)}`, async () => {
      const cpu = await outputsOn('cpu', caseOf(stock, shape, 31));
      const stockNative = await outputsOn('tensorflow', caseOf(stock, shape, 31));
      const got = await outputsOn('tensorflow', caseOf(ours, shape, 31));
      expectClose(`native ${shape} vs stock on native`, got, stockNative);
      expectClose(`native ${shape} vs stock on cpu`, got, cpu);
    });
  }

  nativeTest('with gradients through the statistics too', async () => {
    const cpu = await outputsOn('cpu', caseOf(stock, [3, 5, 4, 6], 41, true));
    const got = await outputsOn('tensorflow', caseOf(ours, [3, 5, 4, 6], 41, true));
    expectClose('native stats-loss vs stock on cpu', got, cpu);
  });

  nativeTest("runs TensorFlow's fused kernels: one forward kernel, one gradient kernel", async () => {
    const report = await selectBackend('tensorflow');
    expect(report.name).toBe('tensorflow');
    expect(tf.getKernel(BATCH_NORM_TRAINING_GRAD, 'tensorflow')).toBeDefined();
    const x = tf.tensor4d(values(2 * 3 * 3 * 4, 5), [2, 3, 3, 4]);
    const g = tf.ones([4]) as tf.Tensor1D;
    const b = tf.zeros([4]) as tf.Tensor1D;
    const profile = await tf.profile(() => tf.tidy(() => tf.grads((a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => tf.sum(batchNormTraining(a as tf.Tensor4D, s as tf.Tensor1D, o as tf.Tensor1D, EPS).y))([x, g, b])));
    const names = profile.kernels.map((k) => k.name);
    expect(names.filter((n) => n === BATCH_NORM_TRAINING)).toHaveLength(1);
    expect(names.filter((n) => n === BATCH_NORM_TRAINING_GRAD)).toHaveLength(1);
    // the generic kernel would show up as Mean / SquaredDifference / FusedBatchNorm
    expect(names).not.toContain('FusedBatchNorm');
    tf.dispose([x, g, b]);
  });

  if (!native) {
    test('without a native build, the tensorflow backend is refused cleanly', async () => {
      await expect(selectBackend('tensorflow')).rejects.toThrow(/backend 'tensorflow' is not available/);
    });
  }
});
