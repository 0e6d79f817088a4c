import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/select';
import {
  LEAKY_RELU_GRAD,
  MAX_POOL_GRAD,
  RELU_GRAD,
  SOFTMAX_CROSS_ENTROPY,
  installNativeKernels,
  replacedNativeKernels,
  setNativeKernels,
  softmaxCrossEntropy,
} from '../src/backend/native-kernels';
import { BATCH_NORM_TRAINING_GRAD, nativeBatchNormGrads, nativeBatchNormKernel } from '../src/backend/native-training';
import { BATCH_NORM_TRAINING, batchNormTraining } from '../src/backend/wasm-training';
import { nativeExpected, outputsOn } from './helpers/backends';

/**
 * SslBatchNormTraining on the native backend (FusedBatchNormV3 / FusedBatchNormGradV3) against the
 * stock moments + batchNorm4d path, on native and on cpu; then, the same way, the single-op
 * gradients and kernels of src/backend/native-kernels.ts. Where this checkout has no native
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

// ---------------------------------------------------------------------------------------------
// Native activation and max-pool gradients, the one-op softmax cross-entropy and the kernels
// replaced in tfjs-node (src/backend/native-kernels.ts): against the stock path on native and on cpu.

type Op = (x: tf.Tensor) => tf.Tensor;
type Fill = 'random' | 'ties' | 'negative' | 'zeros';

/** Inputs with the cases gradients disagree on: exact zeros (activation kinks), ties and all-negative windows (max pool). */
function inputOf(shape: number[], seed: number, fill: Fill): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = values(n, seed);
  if (fill === 'ties') v.forEach((x, i) => (v[i] = Math.round(x * 2)));
  if (fill === 'negative') v.forEach((x, i) => (v[i] = -1 - Math.abs(x)));
  if (fill === 'zeros') v.forEach((x, i) => (v[i] = i % 3 === 0 ? 0 : x));
  return tf.tensor(v, shape);
}

/** y = op(x) and d/dx of sum(op(x) * w) for a fixed w. */
function opCase(op: Op, shape: number[], seed: number, fill: Fill): () => tf.Tensor[] {
  return () => {
    const x = inputOf(shape, seed, fill);
    const y = op(x);
    const w = tf.tensor(values(y.size, seed + 1), y.shape);
    const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(op(a), w)))(x);
    return [y, dx];
  };
}

/**
 * Per-row cross-entropy of soft labels against logits by `xe` (ssl's one-op version or the stock
 * one), d/d(labels, logits) of sum(loss * w), and d/d logits alone of the mean loss (the labels
 * then get no gradient, as the algorithms' targets).
 */
type CrossEntropy = (labels: tf.Tensor2D, logits: tf.Tensor2D) => tf.Tensor1D;
const stockCrossEntropy: CrossEntropy = (labels, logits) => tf.losses.softmaxCrossEntropy(labels, logits, undefined, undefined, tf.Reduction.NONE) as tf.Tensor1D;
function crossEntropyCase(xe: CrossEntropy, rows: number, classes: number, seed: number): () => tf.Tensor[] {
  return () => {
    const logits = tf.mul(tf.tensor2d(values(rows * classes, seed), [rows, classes]), 8) as tf.Tensor2D;
    const labels = tf.softmax(tf.mul(tf.tensor2d(values(rows * classes, seed + 1), [rows, classes]), 6)) as tf.Tensor2D;
    const w = tf.tensor1d(values(rows, seed + 2, 1));
    const loss = xe(labels, logits);
    const [dlabels, dlogits] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(xe(a as tf.Tensor2D, b as tf.Tensor2D), w)))([labels, logits]);
    const dlogitsOnly = tf.grad((b: tf.Tensor) => tf.mean(xe(labels, b as tf.Tensor2D)))(logits);
    return [loss, dlabels, dlogits, dlogitsOnly];
  };
}

/** Runs `fn` with ssl's native kernels on or off, restoring the setting. */
async function withNativeKernels<T>(on: boolean, fn: () => Promise<T>): Promise<T> {
  const before = setNativeKernels(on);
  try {
    return await fn();
  } finally {
    setNativeKernels(before);
  }
}

const OP_TOL = 1e-5;
function expectOpClose(label: string, got: Float32Array[], ref: Float32Array[]): void {
  expect(got.length).toBe(ref.length);
  ref.forEach((r, i) => {
    const d = relDiff(got[i], r);
    expect([label, ['y', 'dx'][i], d <= OP_TOL ? 'ok' : d]).toEqual([label, ['y', 'dx'][i], 'ok']);
  });
}

interface PoolCase {
  shape: number[];
  k: number | [number, number];
  s: number | [number, number];
  pad: 'same' | 'valid';
}
const POOLS: PoolCase[] = [
  { shape: [16, 28, 28, 4], k: 3, s: 2, pad: 'same' }, // te_cnn's first pool, fewer images and channels
  { shape: [2, 7, 7, 3], k: 3, s: 2, pad: 'valid' },
  { shape: [1, 8, 8, 4], k: 2, s: 2, pad: 'valid' },
  { shape: [1, 5, 6, 2], k: [2, 3], s: [1, 2], pad: 'same' },
  { shape: [3, 4, 4, 1], k: 1, s: 1, pad: 'same' },
  { shape: [1, 9, 9, 2], k: 2, s: 3, pad: 'valid' },
  { shape: [1, 3, 3, 1], k: 5, s: 1, pad: 'same' }, // window larger than the input
  { shape: [7, 7, 3], k: 3, s: 2, pad: 'same' }, // 3-D: tfjs adds the batch axis
];
const poolOp =
  (c: PoolCase): Op =>
  (x) =>
    tf.maxPool(x as tf.Tensor4D, c.k, c.s, c.pad);

const ACTIVATIONS: Array<{ name: string; op: Op }> = [
  { name: 'leakyRelu 0.1', op: (x) => tf.leakyRelu(x, 0.1) },
  { name: 'leakyRelu 0.2', op: (x) => tf.leakyRelu(x, 0.2) },
  { name: 'relu', op: (x) => tf.relu(x) },
];

function gradientKernels(op: Op, x: tf.Tensor): Promise<string[]> {
  return tf.profile(() => tf.tidy(() => tf.grad((a: tf.Tensor) => tf.sum(op(a)))(x))).then((p) => p.kernels.map((k) => k.name));
}

describe('native gradients stay out of cpu', () => {
  test('softmaxCrossEntropy is the stock one on cpu', async () => {
    const ref = await outputsOn('cpu', crossEntropyCase(stockCrossEntropy, 7, 5, 81));
    const got = await outputsOn('cpu', crossEntropyCase(softmaxCrossEntropy, 7, 5, 81));
    got.forEach((a, i) => expect(Array.from(a)).toEqual(Array.from(ref[i])));
    expect(tf.getKernel(SOFTMAX_CROSS_ENTROPY, 'cpu')).toBeUndefined();
  });

  test('on cpu the wrapped gradients run the stock kernels, and nothing is registered for cpu or wasm', async () => {
    await selectBackend('cpu');
    for (const name of [LEAKY_RELU_GRAD, RELU_GRAD, MAX_POOL_GRAD]) {
      expect(tf.getKernel(name, 'cpu')).toBeUndefined();
      expect(tf.getKernel(name, 'wasm')).toBeUndefined();
    }
    const x = inputOf([2, 6, 6, 3], 3, 'random');
    const leaky = await gradientKernels((a) => tf.leakyRelu(a, 0.1), x);
    expect(leaky).toEqual(expect.arrayContaining(['Greater', 'Select']));
    expect(await gradientKernels((a) => tf.relu(a), x)).toContain('Step');
    const pool = await gradientKernels((a) => tf.maxPool(a as tf.Tensor4D, 3, 2, 'same'), x);
    expect(pool).toContain('MaxPoolGrad');
    for (const names of [leaky, pool]) expect(names.filter((n) => n.startsWith('Ssl'))).toEqual([]);
    x.dispose();
  });

  test('on cpu, values and gradients are the same with the native kernels on or off', async () => {
    for (const { name, op } of [...ACTIVATIONS, { name: 'maxPool', op: poolOp(POOLS[1]) }]) {
      const shape = name === 'maxPool' ? POOLS[1].shape : [3, 4, 5, 2];
      const on = await withNativeKernels(true, () => outputsOn('cpu', opCase(op, shape, 5, 'zeros')));
      const off = await withNativeKernels(false, () => outputsOn('cpu', opCase(op, shape, 5, 'zeros')));
      on.forEach((a, i) => expect(Array.from(a)).toEqual(Array.from(off[i])));
    }
  });
});

describe('native kernels on TensorFlow', () => {
  const nativeTest = native ? test : (): void => undefined;

  beforeAll(async () => {
    if (!native) return;
    await selectBackend('tensorflow');
    installNativeKernels();
  });

  for (const { name, op } of ACTIVATIONS) {
    for (const fill of ['random', 'zeros'] as Fill[]) {
      nativeTest(`${name} (${fill}): native gradient equals the stock one on native and on cpu`, async () => {
        const shape = [8, 16, 16, 32];
        const cpu = await outputsOn('cpu', opCase(op, shape, 51, fill));
        const stockNative = await withNativeKernels(false, () => outputsOn('tensorflow', opCase(op, shape, 51, fill)));
        const got = await withNativeKernels(true, () => outputsOn('tensorflow', opCase(op, shape, 51, fill)));
        expectOpClose(`${name} ${fill} vs stock on native`, got, stockNative);
        expectOpClose(`${name} ${fill} vs cpu`, got, cpu);
      });
    }
  }

  for (const c of POOLS) {
    for (const fill of ['random', 'ties', 'negative'] as Fill[]) {
      nativeTest(`maxPool ${JSON.stringify(c)} (${fill}): oneDNN forward and gradient equal the stock ones on native and on cpu`, async () => {
        const cpu = await outputsOn('cpu', opCase(poolOp(c), c.shape, 61, fill));
        const stockNative = await withNativeKernels(false, () => outputsOn('tensorflow', opCase(poolOp(c), c.shape, 61, fill)));
        const got = await withNativeKernels(true, () => outputsOn('tensorflow', opCase(poolOp(c), c.shape, 61, fill)));
        expectOpClose(`maxPool ${fill} vs stock on native`, got, stockNative);
        expectOpClose(`maxPool ${fill} vs cpu`, got, cpu);
      });
    }
  }

  for (const [rows, classes] of [[100, 10], [64, 10], [3, 2], [1, 7]]) {
    nativeTest(`softmaxCrossEntropy ${rows}x${classes}: loss and gradients (also tfjs's label gradient) equal the stock ones on native and on cpu`, async () => {
      const cpu = await outputsOn('cpu', crossEntropyCase(stockCrossEntropy, rows, classes, 91));
      const stockNative = await outputsOn('tensorflow', crossEntropyCase(stockCrossEntropy, rows, classes, 91));
      const got = await outputsOn('tensorflow', crossEntropyCase(softmaxCrossEntropy, rows, classes, 91));
      for (const [label, ref] of [['stock on native', stockNative], ['cpu', cpu]] as const) {
        ref.forEach((r, i) => {
          const d = relDiff(got[i], r);
          expect([label, ['loss', 'dlabels', 'dlogits', 'dlogits only'][i], d <= OP_TOL ? 'ok' : d]).toEqual([label, ['loss', 'dlabels', 'dlogits', 'dlogits only'][i], 'ok']);
        });
      }
    });
  }

  nativeTest('softmaxCrossEntropy runs one kernel forward and none of the stock ones', async () => {
    await selectBackend('tensorflow');
    const logits = tf.tensor2d(values(40, 3), [4, 10]);
    const labels = tf.softmax(tf.tensor2d(values(40, 4), [4, 10]));
    const names = async (xe: CrossEntropy) => (await tf.profile(() => tf.tidy(() => tf.grad((b: tf.Tensor) => tf.mean(xe(labels as tf.Tensor2D, b as tf.Tensor2D)))(logits)))).kernels.map((k) => k.name);
    const ours = await names(softmaxCrossEntropy);
    expect(ours.filter((n) => n === SOFTMAX_CROSS_ENTROPY)).toHaveLength(1);
    expect(ours).not.toContain('Exp');
    expect(await withNativeKernels(false, () => names(softmaxCrossEntropy))).toContain('Exp');
    tf.dispose([logits, labels]);
  });

  nativeTest('each gradient is one native kernel, and the stock kernels come back when switched off', async () => {
    await selectBackend('tensorflow');
    const x = inputOf([2, 6, 6, 3], 3, 'random');
    const cases: Array<{ op: Op; ours: string; stock: string[] }> = [
      { op: (a) => tf.leakyRelu(a, 0.1), ours: LEAKY_RELU_GRAD, stock: ['Greater', 'Select'] },
      { op: (a) => tf.relu(a), ours: RELU_GRAD, stock: ['Step'] },
      { op: (a) => tf.maxPool(a as tf.Tensor4D, 3, 2, 'same'), ours: MAX_POOL_GRAD, stock: ['MaxPoolGrad'] },
    ];
    for (const c of cases) {
      const on = await withNativeKernels(true, () => gradientKernels(c.op, x));
      expect(on.filter((n) => n === c.ours)).toHaveLength(1);
      for (const s of c.stock) expect(on).not.toContain(s);
      const off = await withNativeKernels(false, () => gradientKernels(c.op, x));
      expect(off).not.toContain(c.ours);
      expect(off).toEqual(expect.arrayContaining(c.stock));
    }
    x.dispose();
  });

  nativeTest("MaxPool and Cast are replaced in tfjs-node's kernels; a same-dtype cast shares the buffer", async () => {
    await selectBackend('tensorflow');
    expect(replacedNativeKernels()).toEqual(['Cast', 'MaxPool']);
    installNativeKernels(); // idempotent
    expect(replacedNativeKernels()).toEqual(['Cast', 'MaxPool']);
    const x = tf.tensor2d([1.5, -2.25, 3, 0], [2, 2]);
    const ids = tf.backend().numDataIds();
    const same = tf.cast(x, 'float32');
    expect(tf.backend().numDataIds()).toBe(ids);
    expect(Array.from(same.dataSync())).toEqual([1.5, -2.25, 3, 0]);
    const asInt = tf.cast(x, 'int32');
    expect(asInt.dtype).toBe('int32');
    expect(Array.from(asInt.dataSync())).toEqual([1, -2, 3, 0]);
    const asBool = tf.cast(x, 'bool');
    expect(Array.from(asBool.dataSync())).toEqual([1, 1, 1, 0]);
    // the shared buffer outlives the tensor it came from
    x.dispose();
    expect(Array.from(same.dataSync())).toEqual([1.5, -2.25, 3, 0]);
    tf.dispose([same, asInt, asBool]);
    expect(tf.backend().numDataIds()).toBe(ids - 1);
  });

  nativeTest('a small convolutional net trains to the same loss and gradients as on cpu', async () => {
    const net = (): tf.Tensor[] => {
      const x = inputOf([6, 12, 12, 2], 71, 'random');
      const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 3, 1, 0], 'int32'), 4);
      const k1 = tf.variable(tf.mul(inputOf([3, 3, 2, 8], 72, 'random'), 0.5));
      const k2 = tf.variable(tf.mul(inputOf([3, 3, 8, 8], 73, 'random'), 0.3));
      const dense = tf.variable(tf.mul(inputOf([3 * 3 * 8, 4], 74, 'random'), 0.2));
      const loss = (): tf.Scalar => {
        let y = tf.relu(tf.maxPool(tf.conv2d(x as tf.Tensor4D, k1 as tf.Tensor4D, 1, 'same'), 3, 2, 'same'));
        y = tf.maxPool(tf.leakyRelu(tf.conv2d(y, k2 as tf.Tensor4D, 1, 'same'), 0.1), 2, 2, 'valid');
        const logits = tf.matMul(tf.reshape(y, [6, 3 * 3 * 8]), dense);
        return tf.mean(tf.losses.softmaxCrossEntropy(labels, logits, undefined, undefined, tf.Reduction.NONE)) as tf.Scalar;
      };
      const { value, grads } = tf.variableGrads(loss, [k1, k2, dense]);
      const out = [value, grads[k1.name], grads[k2.name], grads[dense.name]].map((t) => tf.clone(t));
      tf.dispose([k1, k2, dense]);
      return out;
    };
    const cpu = await outputsOn('cpu', net);
    const got = await withNativeKernels(true, () => outputsOn('tensorflow', net));
    cpu.forEach((r, i) => {
      const d = relDiff(got[i], r);
      expect([i, d <= 1e-4 ? 'ok' : d]).toEqual([i, 'ok']);
    });
  });
});
