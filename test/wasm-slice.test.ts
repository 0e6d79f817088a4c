import * as tf from '@tensorflow/tfjs';
import { outputsOn } from './helpers/backends';
import { values } from './helpers/kernel-parity';

/**
 * ssl's wasm Slice and SplitV (src/backend/wasm-training.ts) copy contiguous pieces straight from
 * the heap and leave the rest to the stock kernels; either way the values must be the cpu
 * backend's, and nothing may leak.
 */

const cases: Array<[string, () => tf.Tensor[]]> = [
  ['1-D slices', () => {
    const x = tf.tensor1d(values([1000], 1));
    return [tf.slice(x, 0, 10), tf.slice(x, 990, 10), tf.slice(x, 123, 456), tf.slice(x, 500)];
  }],
  ['slices along the first axis, and strided ones (stock)', () => {
    const x = tf.tensor3d(values([6, 4, 5], 2), [6, 4, 5]);
    return [tf.slice(x, [2, 0, 0], [3, 4, 5]), tf.slice(x, [1, 1, 0], [2, 2, 5]), tf.slice(x, [0, 0, 1], [6, 4, 3])];
  }],
  ['int32 and bool slices', () => {
    const i = tf.tensor1d([5, 6, 7, 8, 9], 'int32');
    const b = tf.tensor1d([true, false, true, true], 'bool');
    return [tf.cast(tf.slice(i, 1, 3), 'float32'), tf.cast(tf.slice(b, 1, 2), 'float32')];
  }],
  ['split of a flat vector into sizes', () => tf.split(tf.tensor1d(values([37], 3)), [4, 9, 1, 23])],
  ['split along the first axis, and along a later one (stock)', () => {
    const x = tf.tensor2d(values([6, 4], 4), [6, 4]);
    return [...tf.split(x, 3, 0), ...tf.split(x, [1, 3], 1), ...tf.split(tf.reshape(x, [1, 6, 4]), [2, 4], 1)];
  }],
  ['the gradient of a split (a concat)', () => {
    const x = tf.tensor1d(values([12], 5));
    return [tf.grad((t: tf.Tensor) => {
      const [a, b, c] = tf.split(t, [3, 4, 5]);
      return tf.add(tf.add(tf.sum(tf.mul(a, 2)), tf.sum(tf.square(b))), tf.sum(tf.mul(c, c)));
    })(x)];
  }],
];

test.each(cases)('%s: wasm equals cpu', async (_name, fn) => {
  const cpu = await outputsOn('cpu', fn);
  const wasm = await outputsOn('wasm', fn);
  expect(wasm).toEqual(cpu);
});

test('the wasm Slice and SplitV kernels are ssl own (so the cases above test them)', async () => {
  await outputsOn('wasm', () => []);
  for (const name of [tf.Slice, tf.SplitV]) {
    const k = tf.getKernel(name, 'wasm') as (tf.KernelConfig & Record<symbol, unknown>) | undefined;
    expect([name, k?.[Symbol.for('ssl.wasm-training')]]).toEqual([name, true]);
  }
});
