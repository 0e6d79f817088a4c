import * as tf from '@tensorflow/tfjs';
import { formatDetails, formatTable, formatTargets, parseArgs, runWorkload, webgpuPlan, type Outcome } from '../scripts/bench';
import { selectBackend } from '../src/backend/select';
import { releaseWebGpu } from '../src/backend/webgpu';
import { webGpuExpected } from './helpers/backends';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('bench options', () => {
  test('defaults: native, webgpu and wasm, every workload; --include-cpu adds cpu; --quick shortens', () => {
    const o = parseArgs([]);
    expect(o.backends).toEqual(['tensorflow', 'webgpu', 'wasm']);
    expect(o.workloads).toEqual(['wrn', 'cnn', 'mixmatch']);
    expect([o.steps, o.seconds, o.warmup]).toEqual([5, 3, 2]);
    expect(parseArgs(['--include-cpu']).backends).toEqual(['tensorflow', 'webgpu', 'wasm', 'cpu']);
    expect(parseArgs(['--backends', 'webgpu']).backends).toEqual(['webgpu']);
    expect([o.namedBackends, parseArgs(['--backends', 'webgpu']).namedBackends]).toEqual([false, true]);
    const q = parseArgs(['--quick', '--steps', '7']);
    expect([q.steps, q.seconds, q.warmup]).toEqual([7, 0, 1]);
    expect(parseArgs(['--backends', 'wasm', '--workloads', 'cnn', '--json', 'x.json']).json).toBe('x.json');
  });

  test('bad values are refused with the valid choices', () => {
    expect(() => parseArgs(['--backends', 'webgl'])).toThrow(/valid: tensorflow, webgpu, wasm, cpu/);
    expect(() => parseArgs(['--steps', '0'])).toThrow(/--steps/);
    expect(() => parseArgs(['--steps'])).toThrow(/needs a value/);
    expect(() => parseArgs(['--frobnicate'])).toThrow(/unknown argument/);
  });
});

describe('bench measurements', () => {
  test('the small CNN forward and training steps run and keep the tensor count flat', async () => {
    const r = await runWorkload('cnn', { steps: 1, seconds: 0, warmup: 0, batch: 3 });
    expect(r.forward!.steps).toBe(1);
    expect(r.train.steps).toBe(1);
    expect(r.train.imagesPerSecond).toBeGreaterThan(0);
    expect(r.train.tensorsAfter).toBe(r.train.tensorsBefore);
    expect(r.forward!.tensorsAfter).toBe(r.forward!.tensorsBefore);
    // a training step is far more kernels than a forward pass: the backward pass and the optimiser
    expect(r.train.profile.kernels).toBeGreaterThan(3 * r.forward!.profile.kernels);
    expect(r.train.profile.peakBytes).toBeGreaterThan(0);

    const outcome: Outcome = { ok: true, wallSeconds: 1, backend: { name: 'cpu', version: 'x', source: 'x', polyfills: [] }, maxRssBytes: 1 << 27, cpuSeconds: 1, ...r };
    const table = formatTable([outcome], ['cpu']);
    expect(table).toMatch(/small CNN train img\/s/);
    expect(formatDetails([outcome])).toMatch(/cpu cnn train/);
    expect(formatTargets([outcome])).toMatch(/native WRN-28-2 training >= 60 img\/s: not measured/);
  });
});

describe('bench on webgpu', () => {
  afterAll(() => releaseWebGpu());

  test('webgpu is measured on a GPU; on a CPU adapter only when named, and then as slowly as cpu', () => {
    const adapter = { vendor: 'mesa', architecture: 'software', device: 'llvmpipe', description: 'llvmpipe: Mesa 25.0.7', isFallbackAdapter: true, limits: {} };
    const versions = { dawn: '0.6.2', tfjs: '4.22.0' };
    expect(webgpuPlan({ ok: true, adapter: { ...adapter, cpu: false, vendor: 'nvidia', device: 'H100' }, versions }, false)).toEqual({ slow: false });
    expect(webgpuPlan({ ok: true, adapter: { ...adapter, cpu: true }, versions }, true)).toEqual({ slow: true });
    expect(webgpuPlan({ ok: true, adapter: { ...adapter, cpu: true }, versions }, false).skip).toMatch(/^not measured by default: the only WebGPU adapter, mesa llvmpipe \(software, a CPU adapter\), runs on the CPU; --backends webgpu measures it/);
    expect(webgpuPlan({ ok: false, reason: 'no WebGPU adapter' }, true).skip).toBe("backend 'webgpu' is not available (no WebGPU adapter)");
  });

  test(webGpuExpected() ? 'the small CNN steps run on webgpu, and the table has a webgpu column' : 'webgpu is reported as unavailable, not measured', async () => {
    if (!webGpuExpected()) {
      await expect(selectBackend('webgpu')).rejects.toThrow(/backend 'webgpu' is not available/);
      return;
    }
    await selectBackend('webgpu');
    const r = await runWorkload('cnn', { steps: 1, seconds: 0, warmup: 0, batch: 3 });
    expect(r.train.imagesPerSecond).toBeGreaterThan(0);
    expect(r.train.tensorsAfter).toBe(r.train.tensorsBefore);
    expect(r.forward!.tensorsAfter).toBe(r.forward!.tensorsBefore);
    const outcome: Outcome = { ok: true, wallSeconds: 1, backend: { name: 'webgpu', version: '4.22.0', source: 'x', polyfills: ['MaxPoolGrad'] }, maxRssBytes: 1 << 27, cpuSeconds: 1, ...r };
    expect(formatTable([outcome], ['webgpu']).split('\n')[0]).toMatch(/^measurement\s+webgpu\s+PyTorch$/);
    expect(formatDetails([outcome])).toMatch(/webgpu cnn train/);
    await selectBackend('cpu');
  });
});
