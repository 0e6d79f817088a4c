import { ALGORITHMS } from '../src/algorithms/registry';
import { selectBackend } from '../src/backend/select';
import { releaseWebGpu } from '../src/backend/webgpu';
import { webGpuExpected } from './helpers/backends';
import { PARITY_STEPS, expectSameLosses, firstLosses } from './helpers/webgpu-parity';

/**
 * Every algorithm trains on webgpu as on wasm (which wasm-training.test.ts holds to the CPU
 * backend): the same first steps of the shared training loop, from the same seed, on a small
 * resnet, give the same losses. The models are compared in webgpu-models.test.ts.
 */

/**
 * VAT's power iteration differentiates the KL divergence at a perturbation of norm xi = 1e-6, which
 * float32 resolves only roughly: its adversarial direction, and so its later losses, differ between
 * any two backends (measured on this case: cpu, wasm and tensorflow differ by up to 6e-4 in the
 * third loss, webgpu by 2.4e-4 from wasm).
 */
const TOL_BY_ALGO: Record<string, number> = { vat: 1e-3 };

afterAll(() => releaseWebGpu());

if (!webGpuExpected()) {
  test('without a WebGPU adapter there is nothing to compare (webgpu.test.ts checks the error)', async () => {
    await expect(selectBackend('webgpu')).rejects.toThrow(/backend 'webgpu' is not available/);
  });
} else {
  describe.each(ALGORITHMS.map((a) => [a.name, a] as const))('%s', (_name, algo) => {
    test(`its first ${PARITY_STEPS} steps on a small resnet give the same losses on webgpu as on wasm`, async () => {
      const want = await firstLosses('wasm', algo, 'resnet', 8);
      const got = await firstLosses('webgpu', algo, 'resnet', 8);
      expectSameLosses(got, want, TOL_BY_ALGO[algo.name]);
    });
  });
}
