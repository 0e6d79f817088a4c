import * as tf from '@tensorflow/tfjs';
import { UserError } from '../src/errors';
import { type Attempt, type BackendReport, describeBackend, parseBackendChoice, selectAutomatically, selectBackend } from '../src/backend/select';
import { tensorflowLogWithoutInfo } from '../src/backend/native';
import { probeWebGpu } from '../src/backend/webgpu';
import { nativeExpected } from './helpers/backends';
import { convGradient } from './helpers/kernel-parity';

const NATIVE_CANDIDATES = ['tensorflow (@tensorflow/tfjs-node-gpu)', 'tensorflow (@tensorflow/tfjs-node)', 'tensorflow (native/tfjs-node)'];

describe('parseBackendChoice', () => {
  it('accepts the five names, case-insensitively, with auto as the default', () => {
    expect(parseBackendChoice(undefined)).toBe('auto');
    expect(parseBackendChoice('')).toBe('auto');
    expect(parseBackendChoice('WASM')).toBe('wasm');
    expect(parseBackendChoice('tensorflow')).toBe('tensorflow');
    expect(parseBackendChoice('webgpu')).toBe('webgpu');
  });

  it('rejects an unknown name with a UserError listing the valid ones', () => {
    expect(() => parseBackendChoice('gpu')).toThrow(UserError);
    expect(() => parseBackendChoice('gpu')).toThrow(/unknown backend 'gpu': valid names are auto, tensorflow, webgpu, wasm, cpu/);
  });
});

describe('selectBackend on this machine', () => {
  const savedEnv = process.env.SSL_BACKEND;
  afterEach(() => {
    if (savedEnv === undefined) delete process.env.SSL_BACKEND;
    else process.env.SSL_BACKEND = savedEnv;
  });

  it('gives cpu when cpu is requested, loading nothing native', async () => {
    const r = await selectBackend('cpu');
    expect(r).toMatchObject({ name: 'cpu', version: '4.22.0', skipped: [], polyfills: [] });
    expect(tf.getBackend()).toBe('cpu');
  });

  it('turns an unknown name into a UserError', async () => {
    await expect(selectBackend('cuda')).rejects.toThrow(UserError);
    await expect(selectBackend('cuda')).rejects.toThrow(/valid names are auto, tensorflow, webgpu, wasm, cpu/);
  });

  it('reads $SSL_BACKEND when no name is given', async () => {
    process.env.SSL_BACKEND = 'cpu';
    expect((await selectBackend()).name).toBe('cpu');
  });

  it('gives wasm, with the training kernels, when wasm is requested', async () => {
    const r = await selectBackend('wasm');
    expect(r.name).toBe('wasm');
    expect(r.polyfills).toContain('Conv2DBackpropFilter');
    expect(tf.getBackend()).toBe('wasm');
    expect((await convGradient()).every(Number.isFinite)).toBe(true);
  });

  // This machine's WebGPU adapter, as the probe sees it: a real GPU comes before native TensorFlow on the CPU.
  const probe = probeWebGpu();
  const gpuAdapter = probe.ok && !probe.adapter.cpu;
  const expected = gpuAdapter ? 'webgpu' : nativeExpected() ? 'tensorflow' : 'wasm';

  it(`auto gives ${expected} here (native ${nativeExpected() ? 'built' : 'not built'}; WebGPU ${probe.ok ? (gpuAdapter ? 'on a GPU' : 'on a CPU adapter only') : 'unavailable'})`, async () => {
    delete process.env.SSL_BACKEND;
    const r = await selectBackend('auto');
    expect(r.name).toBe(expected);
    if (expected === 'tensorflow') {
      expect(r.version).toMatch(/^2\.\d+/);
      expect(r.skipped.map((s) => s.name).every((n) => n.startsWith('tensorflow (') || n === 'webgpu')).toBe(true);
    } else if (expected === 'wasm') {
      expect(r.skipped.map((s) => s.name)).toEqual(expect.arrayContaining(NATIVE_CANDIDATES));
      for (const s of r.skipped) expect(s.reason.length).toBeGreaterThan(5);
    }
    // a CPU adapter (lavapipe) is passed over, and why is said; a GPU-less machine says why there is none
    if (expected !== 'webgpu') {
      const webgpu = r.skipped.find((s) => s.name === 'webgpu');
      expect(webgpu?.reason).toMatch(probe.ok ? /^the only adapter, .*, runs on the CPU \(slower than the CPU backends\); --backend webgpu uses it anyway$/ : /no WebGPU adapter|not installed|glibc|Dawn/);
    }
    expect(tf.getBackend()).toBe(r.name);
    // the backend trains a convolution, and agrees with the plain cpu backend
    const got = await convGradient();
    await tf.setBackend('cpu');
    const want = await convGradient();
    const scale = Math.max(...want.map(Math.abs));
    expect(Math.max(...got.map((v, i) => Math.abs(v - want[i])))).toBeLessThan(1e-4 * scale);
  });

  it('is idempotent, and re-selects its backend after something switched away', async () => {
    const a = await selectBackend('auto');
    await tf.setBackend('cpu');
    const b = await selectBackend('auto');
    expect(b).toBe(a);
    expect(tf.getBackend()).toBe(a.name);
  });

  it('explicit tensorflow either loads or says how to get it', async () => {
    if (nativeExpected()) {
      expect((await selectBackend('tensorflow')).name).toBe('tensorflow');
    } else {
      await expect(selectBackend('tensorflow')).rejects.toThrow(/backend 'tensorflow' is not available.*npm run native/);
    }
  });
});

describe('selectBackend order, with the native loader and the WebGPU probe stubbed', () => {
  const reasons = [
    { candidate: '@tensorflow/tfjs-node-gpu', reason: 'package not installed' },
    { candidate: '@tensorflow/tfjs-node', reason: 'binding failed to load: libtensorflow.so.2: cannot open shared object file' },
    { candidate: 'native/tfjs-node', reason: 'not built: run `npm run native` (see README, "Native backend")' },
  ];

  function loadIsolated(): typeof import('../src/backend/select') {
    let mod!: typeof import('../src/backend/select');
    jest.isolateModules(() => {
      jest.doMock('../src/backend/native', () => ({
        loadNativeBackend: () => ({ ok: false, reasons }),
        readBuildInfo: () => undefined,
        readInstallResult: () => undefined,
      }));
      jest.doMock('../src/backend/webgpu', () => ({
        ...jest.requireActual('../src/backend/webgpu'),
        probeWebGpu: () => ({ ok: false, reason: 'no WebGPU adapter: the Vulkan loader (libvulkan.so.1) is not installed; run scripts/setup-webgpu.sh' }),
        loadWebGpuBackend: () => Promise.reject(new Error('no WebGPU adapter: the Vulkan loader (libvulkan.so.1) is not installed; run scripts/setup-webgpu.sh')),
      }));
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = require('../src/backend/select');
    });
    return mod;
  }

  it('falls back to wasm and says why each native candidate was skipped', async () => {
    const { selectBackend: select, describeBackend: describe_ } = loadIsolated();
    const r: BackendReport = await select('auto');
    expect(r.name).toBe('wasm');
    expect(r.skipped).toEqual([
      { name: 'tensorflow (@tensorflow/tfjs-node-gpu)', reason: 'package not installed' },
      { name: 'tensorflow (@tensorflow/tfjs-node)', reason: 'binding failed to load: libtensorflow.so.2: cannot open shared object file' },
      { name: 'tensorflow (native/tfjs-node)', reason: 'not built: run `npm run native` (see README, "Native backend")' },
      { name: 'webgpu', reason: 'no WebGPU adapter: the Vulkan loader (libvulkan.so.1) is not installed; run scripts/setup-webgpu.sh' },
    ]);
    const lines = describe_(r);
    expect(lines[0]).toMatch(/^Backend: wasm 4\.22\.0 \(@tensorflow\/tfjs-backend-wasm 4\.22\.0/);
    expect(lines).toContain('  skipped tensorflow (@tensorflow/tfjs-node-gpu): package not installed');
  });

  it('makes an explicit tensorflow request that cannot load a UserError with the reasons and the fix', async () => {
    const { selectBackend: select } = loadIsolated();
    const err = await select('tensorflow').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).name).toBe('UserError');
    expect((err as Error).message).toMatch(/tfjs-node-gpu\): package not installed/);
    expect((err as Error).message).toMatch(/npm run native/);
  });

  it('makes an explicit webgpu request without an adapter a UserError with the reason and the fix', async () => {
    const { selectBackend: select } = loadIsolated();
    const err = (await select('webgpu').catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('UserError');
    expect(err.message).toBe(
      "backend 'webgpu' is not available (webgpu: no WebGPU adapter: the Vulkan loader (libvulkan.so.1) is not installed; run scripts/setup-webgpu.sh); or use another backend (--backend auto)",
    );
  });
});

describe('the automatic order (selectAutomatically with stub attempts)', () => {
  const report = (name: string, source = name) => ({ name, version: '1', source, polyfills: [] });
  const loaded = (name: string, extra: Partial<Extract<Attempt, { ok: true }>> = {}): (() => Promise<Attempt>) => async () => ({ ok: true, report: report(name), ...extra });
  const failed = (name: string, reason: string): (() => Promise<Attempt>) => async () => ({ ok: false, skipped: [{ name, reason }] });
  const never = (): Promise<Attempt> => {
    throw new Error('not to be tried');
  };

  it('native TensorFlow on a GPU comes first, and nothing else is tried', async () => {
    const r = await selectAutomatically({ tensorflow: loaded('tensorflow', { gpu: true }), webgpuOnGpu: never, wasm: never, cpu: never });
    expect(r).toMatchObject({ name: 'tensorflow', skipped: [] });
  });

  it('a WebGPU GPU adapter comes before native TensorFlow on the CPU', async () => {
    const r = await selectAutomatically({ tensorflow: loaded('tensorflow', { gpu: false, report: report('tensorflow', 'tfjs-node, on the CPU') }), webgpuOnGpu: loaded('webgpu'), wasm: never, cpu: never });
    expect(r.name).toBe('webgpu');
    expect(r.skipped).toEqual([{ name: 'tensorflow', reason: 'tfjs-node, on the CPU; a WebGPU GPU adapter comes first' }]);
  });

  it('without a GPU adapter, native TensorFlow on the CPU, saying why webgpu was passed over', async () => {
    const r = await selectAutomatically({ tensorflow: loaded('tensorflow', { gpu: false }), webgpuOnGpu: failed('webgpu', 'the only adapter, mesa llvmpipe, runs on the CPU'), wasm: never, cpu: never });
    expect(r.name).toBe('tensorflow');
    expect(r.skipped).toEqual([{ name: 'webgpu', reason: 'the only adapter, mesa llvmpipe, runs on the CPU' }]);
  });

  it('without native TensorFlow: webgpu on a GPU, else wasm, else cpu', async () => {
    const noNative = failed('tensorflow (native/tfjs-node)', 'not built');
    expect((await selectAutomatically({ tensorflow: noNative, webgpuOnGpu: loaded('webgpu'), wasm: never, cpu: never })).name).toBe('webgpu');
    const wasm = await selectAutomatically({ tensorflow: noNative, webgpuOnGpu: failed('webgpu', 'no WebGPU adapter'), wasm: loaded('wasm'), cpu: never });
    expect(wasm.name).toBe('wasm');
    expect(wasm.skipped.map((s) => s.name)).toEqual(['tensorflow (native/tfjs-node)', 'webgpu']);
    const cpu = await selectAutomatically({ tensorflow: noNative, webgpuOnGpu: failed('webgpu', 'no WebGPU adapter'), wasm: failed('wasm', 'broken'), cpu: loaded('cpu') });
    expect(cpu.name).toBe('cpu');
    expect(cpu.skipped.map((s) => s.name)).toEqual(['tensorflow (native/tfjs-node)', 'webgpu', 'wasm']);
  });
});

describe('describeBackend', () => {
  it("prints a WebGPU backend's adapter, driver and limits", () => {
    const lines = describeBackend({
      name: 'webgpu',
      version: '4.22.0',
      source: '@tensorflow/tfjs-backend-webgpu 4.22.0',
      skipped: [],
      polyfills: ['MaxPoolGrad'],
      adapter: {
        vendor: 'nvidia',
        architecture: 'hopper',
        device: 'NVIDIA H100 80GB HBM3',
        description: 'NVIDIA: 550.54.15 550.54.15.0',
        isFallbackAdapter: false,
        cpu: false,
        limits: { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 31, maxComputeWorkgroupStorageSize: 49152 },
      },
    });
    expect(lines).toEqual([
      'Backend: webgpu 4.22.0 (@tensorflow/tfjs-backend-webgpu 4.22.0)',
      '  adapter: nvidia NVIDIA H100 80GB HBM3 (hopper, a GPU)',
      '  driver: NVIDIA: 550.54.15 550.54.15.0',
      '  limits: maxBufferSize 4096 MiB, maxStorageBufferBindingSize 2048 MiB, maxComputeWorkgroupStorageSize 49152',
      '  polyfilled kernels: MaxPoolGrad',
    ]);
  });

  it('prints the backend, polyfills and skipped backends, one per line', () => {
    const lines = describeBackend({
      name: 'wasm',
      version: '4.22.0',
      source: '@tensorflow/tfjs-backend-wasm 4.22.0',
      skipped: [{ name: 'tensorflow (@tensorflow/tfjs-node)', reason: 'package not installed' }],
      polyfills: ['Conv2DBackpropFilter'],
    });
    expect(lines).toEqual([
      'Backend: wasm 4.22.0 (@tensorflow/tfjs-backend-wasm 4.22.0)',
      '  polyfilled kernels: Conv2DBackpropFilter',
      '  skipped tensorflow (@tensorflow/tfjs-node): package not installed',
    ]);
  });
});

describe('tensorflowLogWithoutInfo (the load-time stderr filter)', () => {
  it('drops absl INFO lines and their continuations, keeps warnings and errors', () => {
    const log = [
      'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR',
      'I0000 00:00:1795647566.670021   13767 port.cc:153] oneDNN custom operations are on.',
      'I0000 00:00:1795647566.734968   13767 cpu_feature_guard.cc:227] This TensorFlow binary is optimized',
      'To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.',
      "W0000 00:00:1795647566.8   13767 dso_loader.cc:1] Could not load dynamic library 'libcudart.so.12'",
      'LD_LIBRARY_PATH: /usr/lib',
      '2024-01-01 10:00:00.000001: I tensorflow/core/platform/cpu_feature_guard.cc:193] old-style info',
      '2024-01-01 10:00:00.000002: E tensorflow/stream_executor/cuda/cuda_driver.cc:1] old-style error',
      '',
    ].join('\n');
    expect(tensorflowLogWithoutInfo(log)).toEqual([
      "W0000 00:00:1795647566.8   13767 dso_loader.cc:1] Could not load dynamic library 'libcudart.so.12'",
      'LD_LIBRARY_PATH: /usr/lib',
      '2024-01-01 10:00:00.000002: E tensorflow/stream_executor/cuda/cuda_driver.cc:1] old-style error',
    ]);
  });
});
