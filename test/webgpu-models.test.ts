import { supervised } from '../src/algorithms/supervised';
import { selectBackend } from '../src/backend/select';
import { releaseWebGpu } from '../src/backend/webgpu';
import { ARCHS } from '../src/models';
import { webGpuExpected } from './helpers/backends';
import { PARITY_STEPS, expectSameLosses, firstLosses } from './helpers/webgpu-parity';

/**
 * Every model trains on webgpu as on wasm: the first supervised steps of the shared training loop
 * give the same losses (the resnet is trained by every algorithm in webgpu-algorithms.test.ts).
 */

afterAll(() => releaseWebGpu());

if (!webGpuExpected()) {
  test('without a WebGPU adapter there is nothing to compare (webgpu.test.ts checks the error)', async () => {
    await expect(selectBackend('webgpu')).rejects.toThrow(/backend 'webgpu' is not available/);
  });
} else {
  describe.each(ARCHS.filter((a) => a !== 'resnet').map((a) => [a] as const))('the %s model', (arch) => {
    test(`its first ${PARITY_STEPS} supervised steps give the same losses on webgpu as on wasm`, async () => {
      // 16x16 images: cnn13 needs 12x12 at least
      const want = await firstLosses('wasm', supervised, arch, 16);
      const got = await firstLosses('webgpu', supervised, arch, 16);
      expectSameLosses(got, want);
    });
  });
}
