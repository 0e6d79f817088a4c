import * as tf from '@tensorflow/tfjs';
import { batchNormTraining } from '../src/backend/wasm-training';
import { webgpuConvTuning } from '../src/backend/webgpu-training';
import { outputsOn, webGpuExpected } from './helpers/backends';
import { expectSameAsCpu, gradsOf, values, type Shape } from './helpers/kernel-parity';

/**
 * The ops ssl's models train with, on webgpu (with ssl's training kernels) against the plain CPU
 * backend in the same process: each case runs once per backend, creating its tensors after the
 * switch, and only plain arrays cross between them. On a machine without a WebGPU adapter the
 * file checks that selecting webgpu fails with its one line instead.
 */

const TOL = 1e-4;
const worst = new Map<string, number>();
const expectSameOnWebGpuAndCpu = (name: string, fn: () => tf.Tensor[]): Promise<void> => expectSameAsCpu('webgpu', name, fn, TOL, worst);

const available = webGpuExpected();

if (!available) {
  test('without a WebGPU adapter, --backend webgpu fails with one line that says what to install', async () => {
    const { selectBackend } = await import('../src/backend/select');
    const err = (await selectBackend('webgpu').catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('UserError');
    expect(err.message.split('\n')).toHaveLength(1);
    expect(err.message).toMatch(/^backend 'webgpu' is not available \(webgpu: .*(setup-webgpu\.sh|npm ci|glibc)/);
  });
} else {
  afterAll(() => {
    const lines = [...worst.entries()].map(([k, v]) => `${k.padEnd(48)} ${v.toExponential(2)}`);
    // The summary is the evidence for the report: largest scaled difference per case.
    console.log(`webgpu vs cpu, max |diff| / max(1, |cpu|):\n${lines.join('\n')}`);
  });

  describe('conv2d gradients', () => {
    const cases: [string, Shape, Shape, number, 'same' | 'valid'][] = [
      ['3x3 s1 same 7x7', [2, 7, 7, 3], [3, 3, 3, 4], 1, 'same'],
      ['3x3 s1 valid 5x9', [2, 5, 9, 3], [3, 3, 3, 5], 1, 'valid'],
      ['3x3 s2 same 7x7', [2, 7, 7, 3], [3, 3, 3, 4], 2, 'same'],
      ['3x3 s2 same 8x6', [2, 8, 6, 2], [3, 3, 2, 3], 2, 'same'],
      ['1x1 s1 same', [2, 5, 5, 4], [1, 1, 4, 3], 1, 'same'],
      ['1x1 s2 same 8x8', [2, 8, 8, 4], [1, 1, 4, 6], 2, 'same'],
      ['3x3 s1 same cin=1', [3, 6, 6, 1], [3, 3, 1, 4], 1, 'same'],
      ['3x3 s1 same 16 -> 32 channels', [2, 8, 8, 16], [3, 3, 16, 32], 1, 'same'],
      ['3x3 s2 valid 9x7', [2, 9, 7, 3], [3, 3, 3, 2], 2, 'valid'],
      ['4x4 s2 same (even kernel)', [2, 9, 9, 2], [4, 4, 2, 3], 2, 'same'],
      ['5x5 s1 same', [1, 7, 7, 2], [5, 5, 2, 3], 1, 'same'],
      ['3x3 s1 same, 40x40 images (chunks of 2048 rows)', [3, 40, 40, 2], [3, 3, 2, 3], 1, 'same'],
    ];
    for (const [name, xs, ws, stride, pad] of cases) {
      test(name, async () => {
        await expectSameOnWebGpuAndCpu(
          `conv2d ${name}`,
          gradsOf((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, pad), [{ shape: xs }, { shape: ws }], 11),
        );
      });
    }

    test('filter gradient in several passes of several chunks, and the same bits every time', async () => {
      const saved = { ...webgpuConvTuning };
      // im2col of at most 1620 floats per pass and 20 rows per chunk: stride 1 runs 3 passes of
      // 2 images (810 floats each) in 2 chunks; stride 2 (20 positions, 540 floats) 2 passes of 2 chunks
      webgpuConvTuning.passFloats = 1620;
      webgpuConvTuning.chunkRows = 20;
      try {
        for (const [stride, shape] of [
          [1, [6, 6, 5, 3]],
          [2, [4, 9, 8, 3]],
        ] as const) {
          const fn = gradsOf((x, f) => tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, stride, 'same'), [{ shape: [...shape] }, { shape: [3, 3, 3, 4] }], 35);
          await expectSameOnWebGpuAndCpu(`conv2d in passes, stride ${stride}`, fn);
          const [a, b] = [await outputsOn('webgpu', fn), await outputsOn('webgpu', fn)];
          expect(Buffer.from(a[2].buffer).equals(Buffer.from(b[2].buffer))).toBe(true);
        }
      } finally {
        Object.assign(webgpuConvTuning, saved);
      }
    });

    test('conv2d with bias add', async () => {
      await expectSameOnWebGpuAndCpu(
        'conv2d + bias (add)',
        gradsOf((x, f, b) => tf.add(tf.conv2d(x as tf.Tensor4D, f as tf.Tensor4D, 1, 'same'), b), [{ shape: [2, 6, 5, 3] }, { shape: [3, 3, 3, 4] }, { shape: [4] }], 21),
      );
    });
  });

  describe('other layers', () => {
    test('maxPool, including all-negative windows and ties', async () => {
      for (const shift of [0, -2]) {
        await expectSameOnWebGpuAndCpu(
          `maxPool 3x3 s2 same shift ${shift}`,
          gradsOf((x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'same'), [{ shape: [2, 7, 7, 3], shift }], 41),
        );
        await expectSameOnWebGpuAndCpu(
          `maxPool 2x2 s2 valid shift ${shift}`,
          gradsOf((x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid'), [{ shape: [2, 6, 5, 4], shift }], 42),
        );
      }
      // relu before a pool gives windows of equal zeros: the gradient goes to the first of them
      const tied = values([2, 6, 6, 2], 43).map((v) => (v < 0.2 ? 0 : v));
      await expectSameOnWebGpuAndCpu('maxPool 3x3 s2 same with ties', gradsOf((x) => tf.maxPool(x as tf.Tensor4D, 3, 2, 'same'), [{ shape: [2, 6, 6, 2], values: tied }], 44));
      // windows of -Infinity only (the top row of 2x2 windows) pass no gradient
      await expectSameOnWebGpuAndCpu('maxPool 2x2 s2 over -Infinity', () => {
        const x = tf.tensor4d(values([1, 4, 6, 2], 45).map((v, i) => (i < 24 ? -Infinity : v)), [1, 4, 6, 2]);
        const w = tf.tensor4d(values([1, 2, 3, 2], 46), [1, 2, 3, 2]);
        return [tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid'), w)))(x)];
      });
    });

    test('avgPool', async () => {
      await expectSameOnWebGpuAndCpu('avgPool 2x2 s2 valid', gradsOf((x) => tf.avgPool(x as tf.Tensor4D, 2, 2, 'valid'), [{ shape: [2, 6, 6, 3] }], 51));
      await expectSameOnWebGpuAndCpu('avgPool 3x3 s1 same', gradsOf((x) => tf.avgPool(x as tf.Tensor4D, 3, 1, 'same'), [{ shape: [2, 5, 5, 2] }], 52));
    });

    test('relu and leakyRelu', async () => {
      await expectSameOnWebGpuAndCpu('relu', gradsOf((x) => tf.relu(x), [{ shape: [2, 4, 4, 3] }], 61));
      await expectSameOnWebGpuAndCpu('leakyRelu', gradsOf((x) => tf.leakyRelu(x, 0.1), [{ shape: [2, 4, 4, 3] }], 62));
    });

    test('batch norm through tf.moments + batchNorm4d, and batchNormTraining', async () => {
      const inputs = [{ shape: [3, 4, 5, 6], shift: 0.7 }, { shape: [6], shift: 1 }, { shape: [6] }];
      await expectSameOnWebGpuAndCpu(
        'moments + batchNorm4d',
        gradsOf(
          (x, g, b) => {
            const { mean, variance } = tf.moments(x, [0, 1, 2]);
            const y = tf.batchNorm4d(x as tf.Tensor4D, mean as tf.Tensor1D, variance as tf.Tensor1D, b as tf.Tensor1D, g as tf.Tensor1D, 1e-3);
            return tf.concat([tf.reshape(y, [-1]), tf.mul(mean, 3), tf.mul(variance, -2)]);
          },
          inputs,
          71,
        ),
      );
      await expectSameOnWebGpuAndCpu(
        'batchNormTraining',
        gradsOf(
          (x, g, b) => {
            const r = batchNormTraining(x as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D, 1e-3);
            return tf.concat([tf.reshape(r.y, [-1]), tf.mul(r.mean, 3), tf.mul(r.variance, -2)]);
          },
          inputs,
          72,
        ),
      );
      await expectSameOnWebGpuAndCpu('inference batchNorm4d', () => {
        const x = tf.tensor4d(values([2, 3, 3, 4], 73), [2, 3, 3, 4]);
        const m = tf.tensor1d(values([4], 74));
        const v = tf.tensor1d(values([4], 75, 1));
        return [tf.batchNorm4d(x, m, v, tf.tensor1d(values([4], 76)), tf.tensor1d(values([4], 77, 1)), 1e-3)];
      });
    });

    test('weight norm, dense, softmax cross-entropy, global average pooling', async () => {
      await expectSameOnWebGpuAndCpu(
        'weight-normalised kernel',
        gradsOf(
          (v, g) => {
            const norm = tf.sqrt(tf.add(tf.sum(tf.square(v), [0, 1, 2]), 1e-12));
            return tf.mul(v, tf.div(g, norm));
          },
          [{ shape: [3, 3, 2, 5] }, { shape: [5], shift: 1 }],
          80,
        ),
      );
      await expectSameOnWebGpuAndCpu(
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
      await expectSameOnWebGpuAndCpu(
        'soft targets: softmax CE, squared error of softmax, sharpening',
        gradsOf(
          (logits, y) => {
            const p = tf.softmax(y);
            const q = tf.pow(p, 2);
            const target = tf.div(q, tf.sum(q, 1, true));
            const xe = tf.losses.softmaxCrossEntropy(target, logits, undefined, undefined, tf.Reduction.NONE);
            return tf.concat([xe, tf.reshape(tf.square(tf.sub(target, tf.softmax(logits))), [-1])]);
          },
          [{ shape: [6, 10] }, { shape: [6, 10] }],
          82,
        ),
      );
      await expectSameOnWebGpuAndCpu('global average pool', gradsOf((x) => tf.mean(x, [1, 2]), [{ shape: [2, 5, 3, 4] }], 83));
    });

    test('what MixMatch does with its batches: gather, slice, concat, split', async () => {
      await expectSameOnWebGpuAndCpu(
        'gather + mix + slice + concat',
        gradsOf(
          (x) => {
            const perm = tf.tensor1d([2, 0, 3, 1, 5, 4], 'int32');
            const lam = tf.tensor4d([0.9, 0.6, 0.7, 0.55, 0.8, 0.95], [6, 1, 1, 1]);
            const mixed = tf.add(tf.mul(x, lam), tf.mul(tf.gather(x, perm), tf.sub(1, lam)));
            const [a, b, c] = tf.split(mixed, 3, 0);
            return tf.concat([tf.slice(b, 0, 1), a, tf.slice(b, 1, 1), c], 0);
          },
          [{ shape: [6, 3, 3, 2] }],
          84,
        ),
      );
    });

    test('dropout with a seed draws the same mask as on cpu', async () => {
      await expectSameOnWebGpuAndCpu('dropout', gradsOf((x) => tf.dropout(x, 0.5, undefined, 7), [{ shape: [4, 20] }], 85));
      await expectSameOnWebGpuAndCpu('randomNormal', () => [tf.randomNormal([3, 5], 0, 0.15, 'float32', 9)]);
    });
  });

  describe('optimiser and averages', () => {
    test('the Adam, EMA and weight-decay updates', async () => {
      await expectSameOnWebGpuAndCpu('adam + ema + decay', () => {
        const p = tf.tensor2d(values([5, 4], 90), [5, 4]);
        const g = tf.tensor2d(values([5, 4], 91), [5, 4]);
        const m = tf.tensor2d(values([5, 4], 92), [5, 4]);
        const v = tf.abs(tf.tensor2d(values([5, 4], 93), [5, 4]));
        const m1 = tf.add(tf.mul(m, 0.9), tf.mul(g, 0.1));
        const v1 = tf.add(tf.mul(v, 0.999), tf.mul(tf.square(g), 0.001));
        const p1 = tf.mul(tf.sub(p, tf.div(tf.mul(m1, 0.002), tf.add(tf.sqrt(v1), 1e-8))), 1 - 0.02 * 0.002);
        const ema = tf.add(tf.mul(p, 0.999), tf.mul(p1, 0.001));
        return [m1, v1, p1, ema];
      });
    });
  });
}
