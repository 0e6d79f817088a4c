import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/select';
import { probeWebGpu } from '../../src/backend/webgpu';

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
 * Whether the webgpu backend should be tested here: Dawn finds an adapter, GPU or CPU (lavapipe;
 * asked once, in a child process), or SSL_EXPECT_WEBGPU=1 says there must be one. CI installs
 * lavapipe with scripts/setup-webgpu.sh and sets SSL_EXPECT_WEBGPU=1, so that a broken set-up
 * fails the tests instead of quietly leaving webgpu out.
 */
export function webGpuExpected(): boolean {
  return process.env.SSL_EXPECT_WEBGPU === '1' || probeWebGpu().ok;
}

/**
 * The backends training tests run on: native TensorFlow where this machine has it (CI builds it in
 * npm ci), always wasm with ssl's training kernels, and WebGPU where Dawn finds an adapter (CI:
 * lavapipe), so all of them stay correct. The fastest comes first (a test that trains on one
 * backend takes the first); webgpu is last because on lavapipe it is the slowest.
 */
export function trainingBackends(): Array<'tensorflow' | 'webgpu' | 'wasm'> {
  return [...(nativeExpected() ? ['tensorflow' as const] : []), 'wasm', ...(webGpuExpected() ? ['webgpu' as const] : [])];
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
  // data(), not dataSync(): webgpu cannot read synchronously in Node
  const arrays = await Promise.all(out.map(async (t) => Float32Array.from(await t.data())));
  tf.dispose(out);
  expect(tf.memory().numTensors).toBe(before);
  expect(tf.backend().numDataIds()).toBe(buffersBefore);
  return arrays;
}
