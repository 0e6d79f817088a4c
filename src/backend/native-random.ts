import * as tf from '@tensorflow/tfjs';
import { NATIVE, nativeKernelsOn, type NativeBackend } from './native-kernels';

/**
 * Seeded Gaussian noise and dropout for the models' stochastic layers. tfjs draws seeded random
 * numbers in JavaScript, one value at a time, on every backend: for te_cnn's input noise and
 * dropout on a batch of 100 MNIST digits that is about 6 ms of a 35 ms native training step.
 * On the native backend ('tensorflow') they come from TensorFlow's stateless generators
 * (StatelessRandomNormal/Uniform, counter-based Philox) instead: the same seed gives the same
 * values on every run and any number of threads, so resumed runs stay exact. The values are not
 * those tfjs draws (native and the other backends already differ in rounding everywhere else);
 * on every other backend, or with setNativeKernels(false), these are tfjs's own functions.
 */

const NORMAL = 'SslStatelessRandomNormal';
const UNIFORM = 'SslStatelessRandomUniform';

function statelessKernel(op: string): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const b = backend as unknown as NativeBackend;
    const { shape, seed } = inputs as { shape: tf.TensorInfo; seed: tf.TensorInfo };
    const type = (value: number, name: string) => ({ name, type: b.binding.TF_ATTR_TYPE, value });
    return b.executeSingleOutput(op, [type(b.binding.TF_FLOAT, 'dtype'), type(b.binding.TF_INT32, 'T'), type(b.binding.TF_INT32, 'Tseed')], [shape, seed]);
  };
}

function nativeActive(): boolean {
  if (!nativeKernelsOn() || tf.getBackend() !== NATIVE) return false;
  for (const [name, op] of [
    [NORMAL, 'StatelessRandomNormal'],
    [UNIFORM, 'StatelessRandomUniform'],
  ]) {
    if (tf.getKernel(name, NATIVE) == null) tf.registerKernel({ kernelName: name, backendName: NATIVE, kernelFunc: statelessKernel(op) });
  }
  return true;
}

/** Standard-normal (or uniform [0, 1)) values of `shape` from TensorFlow's stateless generator. */
function stateless(kernel: string, shape: number[], seed: number): tf.Tensor {
  return tf.tidy(() => {
    const shapeT = tf.tensor1d(shape, 'int32');
    // Philox takes a pair of seeds; the second one keeps normal and uniform draws of one seed apart
    const seedT = tf.tensor1d([seed | 0, kernel === NORMAL ? 0x6e6f726d : 0x756e6966], 'int32');
    return tf.engine().runKernel(kernel, { shape: shapeT, seed: seedT } as unknown as tf.NamedTensorMap, {}) as tf.Tensor;
  });
}

/** x + N(0, std^2) noise, seeded; unseeded calls use tfjs's generator everywhere. */
export function addGaussianNoise<T extends tf.Tensor>(x: T, std: number, seed?: number): T {
  if (seed === undefined || !nativeActive()) return tf.tidy(() => tf.add(x, tf.randomNormal(x.shape, 0, std, 'float32', seed)));
  return tf.tidy(() => tf.add(x, tf.mul(stateless(NORMAL, x.shape, seed), std)));
}

/** Inverted dropout (kept values scaled by 1/(1 - rate)), as tf.dropout, seeded. */
export function dropout<T extends tf.Tensor>(x: T, rate: number, seed?: number): T {
  if (seed === undefined || !nativeActive()) return tf.dropout(x, rate, undefined, seed) as T;
  return tf.tidy(() => {
    // floor(u + keep) is 1 with probability keep, the mask tf.dropout builds
    const keep = 1 - rate;
    const mask = tf.floor(tf.add(stateless(UNIFORM, x.shape, seed), keep));
    return tf.mul(x, tf.mul(mask, 1 / keep));
  });
}
