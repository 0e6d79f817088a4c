import * as tf from '@tensorflow/tfjs';
import { formatDetails, formatTable, formatTargets, parseArgs, runWorkload, type Outcome } from '../scripts/bench';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('bench options', () => {
  test('defaults: native and wasm, every workload; --include-cpu adds cpu; --quick shortens', () => {
    const o = parseArgs([]);
    expect(o.backends).toEqual(['tensorflow', 'wasm']);
    expect(o.workloads).toEqual(['wrn', 'cnn', 'mixmatch']);
    expect([o.steps, o.seconds, o.warmup]).toEqual([5, 3, 2]);
    expect(parseArgs(['--include-cpu']).backends).toEqual(['tensorflow', 'wasm', 'cpu']);
    const q = parseArgs(['--quick', '--steps', '7']);
    expect([q.steps, q.seconds, q.warmup]).toEqual([7, 0, 1]);
    expect(parseArgs(['--backends', 'wasm', '--workloads', 'cnn', '--json', 'x.json']).json).toBe('x.json');
  });

  test('bad values are refused with the valid choices', () => {
    expect(() => parseArgs(['--backends', 'webgl'])).toThrow(/valid: tensorflow, wasm, cpu/);
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
