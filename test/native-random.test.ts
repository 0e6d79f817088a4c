import * as tf from '@tensorflow/tfjs';
import { setNativeKernels } from '../src/backend/native-kernels';
import { addGaussianNoise, dropout } from '../src/backend/native-random';
import { selectBackend } from '../src/backend/select';
import { nativeExpected } from './helpers/backends';

/**
 * Seeded noise and dropout (src/backend/native-random.ts): TensorFlow's stateless generators on
 * the native backend, tfjs's own functions everywhere else. Either way a seed must give the same
 * values every time (resumed runs depend on it) and the right distribution.
 */

async function read(t: tf.Tensor): Promise<Float32Array> {
  const v = Float32Array.from(await t.data());
  t.dispose();
  return v;
}

function moments(v: Float32Array): { mean: number; std: number } {
  let s = 0;
  let s2 = 0;
  for (const x of v) {
    s += x;
    s2 += x * x;
  }
  const mean = s / v.length;
  return { mean, std: Math.sqrt(s2 / v.length - mean * mean) };
}

const backends = [...(nativeExpected() ? ['tensorflow'] : []), 'cpu'];

describe.each(backends)('on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  test('Gaussian noise: the seed fixes the values, which have the asked spread', async () => {
    const x = tf.fill([50, 20, 20, 1], 1);
    const before = tf.memory().numTensors;
    const a = await read(addGaussianNoise(x, 0.15, 11));
    const b = await read(addGaussianNoise(x, 0.15, 11));
    const c = await read(addGaussianNoise(x, 0.15, 12));
    expect(tf.memory().numTensors).toBe(before);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    const m = moments(a);
    expect(Math.abs(m.mean - 1)).toBeLessThan(0.005);
    expect(Math.abs(m.std - 0.15)).toBeLessThan(0.003);
    x.dispose();
  });

  test('dropout: keeps about 1 - rate of the values, scaled by 1 / (1 - rate), and its gradient is that mask', async () => {
    const x = tf.fill([100, 300], 2);
    const a = await read(dropout(x, 0.25, 5));
    expect(await read(dropout(x, 0.25, 5))).toEqual(a);
    expect(new Set(a)).toEqual(new Set([0, Math.fround(2 / 0.75)]));
    const kept = a.filter((v) => v !== 0).length / a.length;
    expect(Math.abs(kept - 0.75)).toBeLessThan(0.01);
    const g = await read(tf.grad((t: tf.Tensor) => tf.sum(dropout(t, 0.25, 5)))(x));
    expect(g).toEqual(a.map((v) => v / 2));
    x.dispose();
  });

  test('without a seed, or with the native kernels off, these are tfjs own functions', async () => {
    const x = tf.zeros([4, 6]);
    const off = setNativeKernels(false);
    try {
      expect(await read(addGaussianNoise(x, 0.5, 3))).toEqual(await read(tf.add(x, tf.randomNormal([4, 6], 0, 0.5, 'float32', 3))));
      expect(await read(dropout(tf.onesLike(x), 0.5, 3))).toEqual(await read(tf.dropout(tf.onesLike(x), 0.5, undefined, 3)));
    } finally {
      setNativeKernels(off);
    }
    if (backend === 'cpu') expect(await read(addGaussianNoise(x, 0.5, 3))).toEqual(await read(tf.add(x, tf.randomNormal([4, 6], 0, 0.5, 'float32', 3))));
    x.dispose();
  });
});
