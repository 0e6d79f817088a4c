import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/select';

const repo = path.resolve(__dirname, '..', '..');

/** Whether this checkout should get the native backend: a complete wheel build, or a stock package with its addon. */
export function nativeExpected(): boolean {
  if (fs.existsSync(path.join(repo, 'native', 'BUILD_INFO.json'))) return true;
  for (const name of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      const dir = path.dirname(require.resolve(`${name}/package.json`, { paths: [repo] }));
      if (fs.existsSync(path.join(dir, 'lib', 'napi-v8', 'tfjs_binding.node'))) return true;
    } catch {
      /* not installed */
    }
  }
  return false;
}

/**
 * The backends training tests run on: native TensorFlow where this machine has it (CI builds it in
 * npm ci), and always wasm with ssl's training kernels, so both stay correct.
 */
export function trainingBackends(): Array<'tensorflow' | 'wasm'> {
  return nativeExpected() ? ['tensorflow', 'wasm'] : ['wasm'];
}

/**
 * Runs `fn` on a backend and returns copies of the tensors it produced, disposing everything and
 * checking that nothing leaked: kernels that allocate their own scratch tensors must free them, so
 * backend buffers are counted as well as tensors.
 */
export async function outputsOn(backend: string, fn: () => tf.Tensor[]): Promise<Float32Array[]> {
  await selectBackend(backend);
  const before = tf.memory().numTensors;
  const buffersBefore = tf.backend().numDataIds();
  const out = tf.tidy(fn);
  const arrays = out.map((t) => Float32Array.from(t.dataSync()));
  tf.dispose(out);
  expect(tf.memory().numTensors).toBe(before);
  expect(tf.backend().numDataIds()).toBe(buffersBefore);
  return arrays;
}
