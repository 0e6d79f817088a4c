import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { BATCH_NORM_TRAINING, batchNormTraining, installWasmTrainingKernels, wasmConvTuning } from '../src/backend/wasm-training';
import { outputsOn } from './helpers/backends';
import { expectSameAsCpu, gradsOf, maxDiff, values, type Shape } from './helpers/kernel-parity';

/**
 * Gradients on the wasm backend (with the training kernels installed) against the plain CPU
 * backend, both in this process: each case runs once per backend, creating its tensors after the
 * switch, and only plain arrays cross between them.
 */

const TOL = 1e-4;
const worst = new Map<string, number>();
const expectSameOnWasmAndCpu = (name: string, fn: () => tf.Tensor[]): Promise<void> => expectSameAsCpu('wasm', name, fn, TOL, worst);

beforeAll(async () => {
  installWasmTrainingKernels();
  expect(await tf.setBackend('wasm')).toBe(true);
  expect(await tf.setBackend('cpu')).toBe(true);
});

afterAll(() => {
  const lines = [...worst.entries()].map(([k, v]) => `${k.padEnd(48)} ${v.toExponential(2)}`);
  // The summary is the evidence for the report: largest scaled difference per case.
  console.log(`wasm vs cpu, max |diff| / max(1, |cpu|):\n${lines.join('\n')}`);
});

describe('conv2d gradients', () => {
  const cases: [string, Shape, Shape, number, 'same' | 'valid' | tf.backend_util.ExplicitPadding][] = [
    ['3x3 s1 same 7x7', [2, 7, 7, 3], [3, 3, 3, 4], 1, 'same'],
    ['3x3 s1 valid 5x9', [2, 5, 9, 3], [3, 3, 3, 5], 1, 'valid'],
    ['3x3 s2 same 7x7', [2, 7, 7, 3], [3, 3, 3, 4], 2, 'same'],
    ['3x3 s2 same 8x6', [2, 8, 6, 2], [3, 3, 2, 3], 2, 'same'],
    ['3x3 s2 valid 9x7', [2, 9, 7, 3], [3, 3, 3, 2], 2, 'valid'],
    ['1x1 s1 same', [2, 5, 5, 4], [1, 1, 4, 3], 1, 'same'],
    ['1x1 s2 same 7x7', [2, 7, 7, 4], [1, 1, 4, 6], 2, 'same'],
    ['1x1 s2 valid 6x6', [2, 6, 6, 3], [1, 1, 3, 2], 2, 'valid'],
    ['3x3 s1 same cin=1', [3, 6, 6, 1], [3, 3, 1, 4], 1, 'same'],
    ['5x5 s1 same', [1, 7, 7, 2], [5, 5, 2, 3], 1, 'same'],
    ['4x4 s2 same (even kernel)', [2, 9, 9, 2], [4, 4, 2, 3], 2, 'same'],
    ['3x3 s3 valid', [1, 10, 10, 2], [3, 3, 2, 2], 3, 'valid'],
    [
      '3x3 s1 explicit pad',
      [1, 6, 7, 2],
      [3, 3, 2, 3],
      1,
      [
        [0, 0],
        [2, 0],
        [0, 1],
        [0, 0],
      ],
    ],
  ];
  for (const [name, xs, ws, stride, pad] of cases) {
    test(name, async () => {
      await expectSameOnWasmAndCpu(
        `conv2d ${name}`,
        gradsOf((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, pad), [{ shape: xs }, { shape: ws }], 11),
      );
    });
  }

  test('conv2d with bias add, plain and fused', async () => {
    await expectSameOnWasmAndCpu(
      'conv2d + bias (add)',
      gradsOf(
        (x, f, b) => tf.add(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'), b),
        [{ shape: [2, 6, 5, 3] }, { shape: [3, 3, 3, 4] }, { shape: [4] }],
        21,
      ),
    );
    await expectSameOnWasmAndCpu(
      'conv2d + bias (tf.fused.conv2d)',
      gradsOf(
        (x, f, b) => tf.fused.conv2d({ x: x as tf.Tensor4D, filter: f as tf.Tensor4D, bias: b, strides: 2, pad: 'same' }),
        [{ shape: [2, 7, 7, 3] }, { shape: [3, 3, 3, 4] }, { shape: [4] }],
        22,
      ),
    );
  });

  test('filter gradient of large activations stays within relative tolerance', async () => {
    await expectSameOnWasmAndCpu(
      'conv2d large values',
      gradsOf((x, f) => tf.mul(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'), 50), [{ shape: [4, 9, 9, 8], shift: 3 }, { shape: [3, 3, 8, 8] }], 31),
    );
  });

  test('filter gradient summed over several chunks', async () => {
    const saved = { ...wasmConvTuning };
    // One or two images per chunk, with a partial last chunk.
    wasmConvTuning.colsChunkFloats = 1;
    wasmConvTuning.minChunkPositions = 40;
    try {
      await expectSameOnWasmAndCpu(
        'conv2d chunked 3x3 s1 same',
        gradsOf((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'), [{ shape: [5, 6, 5, 3] }, { shape: [3, 3, 3, 4] }], 35),
      );
      await expectSameOnWasmAndCpu(
        'conv2d chunked 3x3 s2 same',
        gradsOf((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 2, 'same'), [{ shape: [3, 9, 8, 3] }, { shape: [3, 3, 3, 2] }], 36),
      );
      await expectSameOnWasmAndCpu(
        'conv2d chunked 1x1 s1 valid',
        gradsOf((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid'), [{ shape: [4, 5, 5, 3] }, { shape: [1, 1, 3, 2] }], 37),
      );
    } finally {
      Object.assign(wasmConvTuning, saved);
    }
  });

  // Heap offsets past 2 GiB turn negative under a signed shift; a WRN run after the stock kernels
  // reached them and trained into NaN.
  test('tensors above 2 GiB in the wasm heap', async () => {
    await tf.setBackend('wasm');
    const wasm = (tf.backend() as BackendWasm).wasm as unknown as { _malloc(n: number): number; _free(p: number): void };
    const high = 2 ** 31;
    // Reserved and never touched, so the heap grows past 2 GiB without using the memory; then the
    // free space below is used up, so that the case's tensors land above.
    // _malloc returns a signed 32-bit pointer.
    const malloc = (n: number): number => wasm._malloc(n) >>> 0;
    const blocks = [malloc(high)];
    try {
      expect(blocks[0]).toBeGreaterThan(0);
      for (const size of [1 << 20, 1 << 12, 1 << 6, 8]) {
        for (let i = 0; i < 100000; i++) {
          const p = malloc(size);
          blocks.push(p);
          if (p === 0 || p > high) break;
        }
      }
      const probe = tf.zeros([4]);
      expect((tf.backend() as BackendWasm).typedArrayFromHeap(probe).byteOffset).toBeGreaterThan(high);
      probe.dispose();
      await expectSameOnWasmAndCpu(
        'conv2d with tensors past 2 GiB',
        gradsOf((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'), [{ shape: [2, 6, 6, 3] }, { shape: [3, 3, 3, 4] }], 38),
      );
    } finally {
      await tf.setBackend('wasm');
      for (const p of blocks) if (p !== 0) wasm._free(p);
    }
  });

  test('unsupported layouts fail with a clear error', async () => {
    await tf.setBackend('wasm');
    const x = tf.zeros([1, 3, 5, 5]);
    const dy = tf.zeros([1, 2, 5, 5]);
    expect(() =>
      tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
        strides: 1,
        pad: 'same',
        dataFormat: 'NCHW',
        filterShape: [3, 3, 3, 2],
      } as unknown as tf.NamedAttrMap),
    ).toThrow(/NHWC/);
    tf.dispose([x, dy]);
    // Dilated convolutions are refused by tfjs-core's Conv2D gradient before any kernel runs.
    const xs = tf.zeros([1, 5, 5, 1]) as tf.Tensor4D;
    const f = tf.zeros([3, 3, 1, 1]);
    expect(() => tf.grad((k: tf.Tensor) => tf.sum(tf.conv2d(xs, k as tf.Tensor4D, 1, 'same', 'NHWC', 2)))(f)).toThrow(/dilation/);
    tf.dispose([xs, f]);
  });
});

describe('other layers', () => {
  test('maxPool, including all-negative windows', async () => {
    for (const shift of [0, -2]) {
      await expectSameOnWasmAndCpu(
        `maxPool 3x3 s2 same shift ${shift}`,
        gradsOf((x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'same'), [{ shape: [2, 7, 7, 3], shift }], 41),
      );
      await expectSameOnWasmAndCpu(
        `maxPool 2x2 s2 valid shift ${shift}`,
        gradsOf((x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid'), [{ shape: [2, 6, 5, 4], shift }], 42),
      );
    }
  });

  test('avgPool', async () => {
    await expectSameOnWasmAndCpu(
      'avgPool 2x2 s2 valid',
      gradsOf((x) => tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid'), [{ shape: [2, 6, 6, 3] }], 51),
    );
    await expectSameOnWasmAndCpu(
      'avgPool 3x3 s1 same',
      gradsOf((x) => tf.avgPool(x as tf.Tensor4D, 3, 1, 'same'), [{ shape: [2, 5, 5, 2] }], 52),
    );
  });

  test('relu and leakyRelu', async () => {
    await expectSameOnWasmAndCpu('relu', gradsOf((x) => tf.relu(x), [{ shape: [2, 4, 4, 3] }], 61));
    await expectSameOnWasmAndCpu('leakyRelu', gradsOf((x) => tf.leakyRelu(x, 0.1), [{ shape: [2, 4, 4, 3] }], 62));
  });

  test('batch norm through tf.moments + batchNorm4d', async () => {
    await expectSameOnWasmAndCpu(
      'moments + batchNorm4d',
      gradsOf(
        (x, g, b) => {
          const { mean, variance } = tf.moments(x, [0, 1, 2]);
          return tf.batchNorm4d(x as tf.Tensor4D, mean as tf.Tensor1D, variance as tf.Tensor1D, b as tf.Tensor1D, g as tf.Tensor1D, 1e-3);
        },
        [{ shape: [3, 4, 5, 6], shift: 0.7 }, { shape: [6], shift: 1 }, { shape: [6] }],
        71,
      ),
    );
  });

  test('dense, softmax cross-entropy, mean, global average pooling', async () => {
    await expectSameOnWasmAndCpu(
      'dense + softmax CE',
      gradsOf(
        (x, w, b) => {
          const logits = tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b);
          const labels = tf.oneHot(tf.tensor1d([0, 2, 1, 4], 'int32'), 5);
          return tf.losses.softmaxCrossEntropy(labels, logits);
        },
        [{ shape: [4, 7] }, { shape: [7, 5] }, { shape: [5] }],
        81,
      ),
    );
    await expectSameOnWasmAndCpu('global average pool + sum', gradsOf((x) => tf.mean(x, [1, 2]), [{ shape: [2, 5, 3, 4] }], 82));
    await expectSameOnWasmAndCpu('sum over axes', gradsOf((x) => tf.sum(x, [0, 3]), [{ shape: [2, 5, 3, 4] }], 83));
  });

  test('sum and mean over every kind of axis set', async () => {
    const axesCases: [number[], boolean][] = [
      [[0, 1, 2], false],
      [[1, 2], false],
      [[0], true],
      [[1], false],
      [[0, 2], false],
      [[3], false],
      [[2, 3], true],
      [[0, 1, 2, 3], false],
    ];
    for (const [axes, keepDims] of axesCases) {
      await expectSameOnWasmAndCpu(`sum/mean axes [${axes}] keepDims ${keepDims}`, () => {
        const x = tf.tensor4d(values([3, 4, 5, 6], 84, 0.3), [3, 4, 5, 6]);
        return [tf.sum(x, axes, keepDims), tf.mean(x, axes, keepDims)];
      });
    }
    await expectSameOnWasmAndCpu('sum int32', () => [tf.cast(tf.sum(tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2], 'int32'), [0, 1]), 'float32')]);
  });

  test('tile', async () => {
    const cases: [Shape, number[]][] = [
      [[1, 1, 1, 5], [2, 3, 4, 1]],
      [[2, 3], [3, 2]],
      [[4], [3]],
      [[2, 1, 3], [1, 4, 1]],
      [[2, 2, 2], [2, 1, 3]],
    ];
    for (const [shape, reps] of cases) {
      await expectSameOnWasmAndCpu(`tile [${shape}] x [${reps}]`, () => [tf.tile(tf.tensor(values(shape, 95), shape), reps)]);
    }
    await expectSameOnWasmAndCpu('tile int32', () => [tf.cast(tf.tile(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), [2, 3]), 'float32')]);
  });

  test('a clone outlives its source', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor1d([1, 2, 3]);
    const y = tf.clone(x);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    y.dispose();
  });

  test('a small network end to end (variableGrads)', async () => {
    const net = (): tf.Tensor[] => {
      const v = (shape: Shape, seed: number, scale: number) => tf.variable(tf.mul(tf.tensor(values(shape, seed), shape), scale));
      const k1 = v([3, 3, 2, 6], 1, 0.6);
      const b1 = v([6], 2, 0.2);
      const g1 = v([6], 3, 0.3);
      const be1 = v([6], 4, 0.3);
      const k2 = v([3, 3, 6, 8], 5, 0.4);
      const k3 = v([1, 1, 6, 8], 6, 0.4);
      const wd = v([8, 3], 7, 0.5);
      const bd = v([3], 8, 0.1);
      const x = tf.tensor4d(values([4, 9, 9, 2], 9), [4, 9, 9, 2]);
      const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
      const { value, grads } = tf.variableGrads(() => {
        let y = tf.add(tf.conv2d(x, k1 as tf.Tensor4D, 1, 'same'), b1) as tf.Tensor4D;
        const { mean, variance } = tf.moments(y, [0, 1, 2]);
        y = tf.batchNorm4d(y, mean as tf.Tensor1D, variance as tf.Tensor1D, be1 as tf.Tensor1D, g1 as tf.Tensor1D, 1e-3);
        y = tf.maxPool(tf.leakyRelu(y, 0.1), 3, 2, 'same');
        const body = tf.relu(tf.conv2d(y, k2 as tf.Tensor4D, 2, 'same'));
        const short = tf.conv2d(y, k3 as tf.Tensor4D, 2, 'same');
        const pooled = tf.mean(tf.add(body, short), [1, 2]) as tf.Tensor2D;
        const logits = tf.add(tf.matMul(pooled, wd as tf.Tensor2D), bd);
        return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
      }, [k1, b1, g1, be1, k2, k3, wd, bd]);
      const out = [value, ...[k1, b1, g1, be1, k2, k3, wd, bd].map((p) => grads[p.name])];
      tf.dispose([k1, b1, g1, be1, k2, k3, wd, bd]);
      return out;
    };
    await expectSameOnWasmAndCpu('small network variableGrads', net);
  });
});

describe('batchNormTraining', () => {
  const stock = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    const y = tf.batchNorm4d(x as tf.Tensor4D, mean as tf.Tensor1D, variance as tf.Tensor1D, b as tf.Tensor1D, g as tf.Tensor1D, 1e-3);
    return { y, mean, variance };
  };
  const ours = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormTraining(x as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3);
  // Uses the statistics too, so that their gradients are checked as well as y's.
  const loss = (impl: typeof stock) => (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const r = impl(x, g, b);
    return tf.concat([tf.reshape(r.y, [-1]), tf.mul(r.mean, 3), tf.mul(r.variance, -2)]);
  };
  const inputs = [{ shape: [3, 5, 4, 6], shift: 0.5 }, { shape: [6], shift: 1 }, { shape: [6] }];

  for (const backend of ['cpu', 'wasm']) {
    test(`matches moments + batchNorm4d in values and gradients on ${backend}`, async () => {
      const a = await outputsOn(backend, gradsOf(loss(stock), inputs, 91));
      const b = await outputsOn(backend, gradsOf(loss(ours), inputs, 91));
      let m = 0;
      a.forEach((v, i) => {
        m = Math.max(m, maxDiff(b[i], v));
      });
      worst.set(`batchNormTraining vs stock on ${backend}`, m);
      expect(m).toBeLessThan(TOL);
    });
  }

  test('runs as one kernel with one tape node', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor4d(values([2, 3, 3, 4], 5), [2, 3, 3, 4]);
    const g = tf.ones([4]) as tf.Tensor1D;
    const b = tf.zeros([4]) as tf.Tensor1D;
    const profile = await tf.profile(() => tf.tidy(() => batchNormTraining(x, g, b, 1e-3).y));
    expect(profile.kernels.filter((k) => k.name === BATCH_NORM_TRAINING)).toHaveLength(1);
    tf.dispose([x, g, b]);
  });
});

describe('training on wasm', () => {
  test('Adam on a tiny CNN lowers the loss', async () => {
    await tf.setBackend('wasm');
    const before = tf.memory().numTensors;
    const v = (shape: Shape, seed: number, scale: number) => tf.variable(tf.mul(tf.tensor(values(shape, seed), shape), scale));
    // Built in a tidy so that only the variables outlive their initial values.
    const vars = tf.tidy(() => [
      v([3, 3, 1, 8], 1, 0.8),
      tf.variable(tf.ones([8])),
      tf.variable(tf.zeros([8])),
      v([3, 3, 8, 8], 2, 0.3),
      v([8, 4], 3, 0.5),
      tf.variable(tf.zeros([4])),
    ]);
    const [k1, g1, b1, k2, wd, bd] = vars;
    // Four classes of 8x8 images, each a bright quadrant plus fixed noise.
    const n = 16;
    const px = values([n, 8, 8, 1], 4);
    const cls = Array.from({ length: n }, (_, i) => i % 4);
    for (let i = 0; i < n; i++) {
      for (let r = 0; r < 4; r++) {
        for (let c = 0; c < 4; c++) px[i * 64 + (r + 4 * (cls[i] >> 1)) * 8 + c + 4 * (cls[i] & 1)] += 1;
      }
    }
    const x = tf.tensor4d(px, [n, 8, 8, 1]);
    const labels = tf.tidy(() => tf.oneHot(tf.tensor1d(cls, 'int32'), 4));
    const optimizer = tf.train.adam(0.02);
    const losses: number[] = [];
    for (let step = 0; step < 12; step++) {
      const loss = optimizer.minimize(() => {
        const bn = batchNormTraining(tf.conv2d(x, k1 as tf.Tensor4D, 1, 'same'), g1 as tf.Tensor1D, b1 as tf.Tensor1D, 1e-3);
        let y = tf.maxPool(tf.leakyRelu(bn.y, 0.1), 3, 2, 'same');
        y = tf.relu(tf.conv2d(y, k2 as tf.Tensor4D, 2, 'same'));
        const logits = tf.add(tf.matMul(tf.mean(y, [1, 2]) as tf.Tensor2D, wd as tf.Tensor2D), bd);
        return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
      }, true, vars);
      losses.push(loss!.dataSync()[0]);
      loss!.dispose();
    }
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] * 0.6);
    optimizer.dispose();
    tf.dispose([x, labels, ...vars]);
    expect(tf.memory().numTensors).toBe(before);
  });

  test('installing twice changes nothing', async () => {
    const filter = tf.getKernel(tf.Conv2DBackpropFilter, 'wasm');
    const input = tf.getKernel(tf.Conv2DBackpropInput, 'wasm');
    installWasmTrainingKernels();
    expect(tf.getKernel(tf.Conv2DBackpropFilter, 'wasm')).toBe(filter);
    expect(tf.getKernel(tf.Conv2DBackpropInput, 'wasm')).toBe(input);
  });
});
