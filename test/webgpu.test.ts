import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { getAlgorithm } from '../src/algorithms/registry';
import { describeBackend, parseBackendChoice, selectBackend } from '../src/backend/select';
import {
  dawnFlags,
  dawnMessages,
  deviceLostMessage,
  isCpuAdapter,
  noAdapterReason,
  probeWebGpu,
  releaseWebGpu,
  vulkanLoaderPresent,
  webGpuDevice,
  webGpuError,
  type WebGpuAdapter,
} from '../src/backend/webgpu';
import { listCheckpoints, loadCheckpoint, restoreGroup, saveCheckpoint } from '../src/train/checkpoint';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import { train } from '../src/train/trainer';
import { webGpuExpected } from './helpers/backends';
import { convGradient } from './helpers/kernel-parity';
import { syntheticData } from './helpers/synthetic';

/**
 * The WebGPU backend: how Dawn's answers are read (adapter kinds, reasons for no adapter), the
 * probe, `--backend webgpu` on this machine's adapter, what `ssl env` prints, checkpoints that
 * cross between webgpu and the CPU backends, and a device lost in the middle of a run. The order
 * rules of automatic selection, with the probe stubbed, are in backend-select.test.ts.
 */

const LAVAPIPE: Omit<WebGpuAdapter, 'cpu'> = {
  vendor: 'mesa',
  architecture: 'software',
  device: 'llvmpipe-llvm-15-0-6-256-bits-',
  description: 'llvmpipe: Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6) 0.0.1',
  isFallbackAdapter: true,
  limits: { maxBufferSize: 2 ** 32 - 1, maxStorageBufferBindingSize: 2 ** 27 },
};

describe('reading what Dawn says', () => {
  test('CPU adapters are told from GPUs by the fallback flag, the architecture or the driver name', () => {
    expect(isCpuAdapter(LAVAPIPE)).toBe(true);
    expect(isCpuAdapter({ ...LAVAPIPE, isFallbackAdapter: false })).toBe(true);
    expect(isCpuAdapter({ vendor: 'google', architecture: '', device: 'SwiftShader Device (Subzero)', description: 'SwiftShader driver', isFallbackAdapter: false })).toBe(true);
    expect(isCpuAdapter({ vendor: 'mesa', architecture: '', device: 'lavapipe', description: '', isFallbackAdapter: false })).toBe(true);
    expect(isCpuAdapter({ vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100 80GB HBM3', description: 'NVIDIA: 550.54.15', isFallbackAdapter: false })).toBe(false);
    expect(isCpuAdapter({ vendor: 'amd', architecture: 'rdna-3', device: 'AMD Radeon RX 7900 XTX (RADV NAVI31)', description: 'radv: Mesa 25.0.7', isFallbackAdapter: false })).toBe(false);
  });

  test("Dawn's limit warnings are dropped, its reasons kept without context lines", () => {
    const stderr = [
      'Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.',
      'Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.',
      ' - While initializing adapter (backend=BackendType::Vulkan)',
      '    at InitializeImpl (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/PhysicalDeviceVk.cpp:257)',
      '',
    ].join('\n');
    expect(dawnMessages(stderr)).toEqual(['Vulkan shaderUniform*ArrayDynamicIndexing required.']);
  });

  test('no adapter: the reason names the cause and what to install', () => {
    // Dawn's own words, captured on Debian 12: no ICD, and Mesa 22's lavapipe
    const noDriver = ['loader_get_json: Failed to open JSON file /nonexistent.json', 'vkCreateInstance: Found no drivers!', 'vkCreateInstance failed with VK_ERROR_INCOMPATIBLE_DRIVER'];
    const oldMesa = ['Vulkan shaderUniform*ArrayDynamicIndexing required.'];
    expect(noAdapterReason([], false)).toMatch(/^no WebGPU adapter: the Vulkan loader \(libvulkan\.so\.1\) is not installed; run scripts\/setup-webgpu\.sh/);
    expect(noAdapterReason(noDriver, true)).toMatch(/^no WebGPU adapter: Vulkan finds no driver \(loader_get_json.*\); run scripts\/setup-webgpu\.sh/);
    expect(noAdapterReason(oldMesa, true)).toBe(
      'no WebGPU adapter: Dawn refused the Vulkan driver as too old (Vulkan shaderUniform*ArrayDynamicIndexing required.); update it (Debian 12: Mesa 25 from bookworm-backports, see scripts/setup-webgpu.sh)',
    );
    expect(noAdapterReason([], true)).toMatch(/^no WebGPU adapter; run scripts\/setup-webgpu\.sh/);
    for (const r of [noAdapterReason([], false), noAdapterReason(noDriver, true), noAdapterReason(oldMesa, true)]) expect(r).not.toMatch(/\n/);
  });

  test('a lost device says how to resume elsewhere', () => {
    expect(deviceLostMessage('unknown', 'the GPU hung')).toBe(
      'the WebGPU device was lost (unknown: the GPU hung); its last checkpoint is backend-neutral: re-run the same command with --backend wasm (or another backend) to resume from it',
    );
  });

  test('what the device reports: out of memory and tensors too large to bind are the user\'s to fix', () => {
    const oom = webGpuError('GPUOutOfMemoryError', 'Allocation failed');
    expect(oom.name).toBe('UserError');
    expect(oom.message).toBe('the WebGPU device ran out of memory (Allocation failed); lower --batch, or use another backend (--backend wasm)');
    // Dawn's words on lavapipe for a 160 MB tensor
    const big = webGpuError('GPUValidationError', 'Binding size (160000000) of [Buffer (unlabeled)] is larger than the maximum storage buffer binding size (134217728).');
    expect(big.name).toBe('UserError');
    expect(big.message).toMatch(/^a tensor is too large for this WebGPU adapter \(Binding size .*\); lower --batch or --eval-batch, or use another backend \(--backend wasm\)$/);
    const bug = webGpuError('GPUValidationError', 'Invalid ShaderModule');
    expect(bug.name).toBe('Error');
    expect(bug.message).toBe('WebGPU GPUValidationError: Invalid ShaderModule');
  });

  test('$SSL_DAWN_FLAGS passes options to Dawn', () => {
    expect(dawnFlags({})).toEqual([]);
    expect(dawnFlags({ SSL_DAWN_FLAGS: ' enable-dawn-features=disable_robustness  adapter=NVIDIA ' })).toEqual(['enable-dawn-features=disable_robustness', 'adapter=NVIDIA']);
  });

  test('webgpu is one of the --backend names', () => {
    expect(parseBackendChoice('WebGPU')).toBe('webgpu');
  });
});

describe('the probe (a child process)', () => {
  test('finds an adapter, or says why not in one line', () => {
    const p = probeWebGpu();
    if (p.ok) {
      expect(p.adapter.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
      expect(p.adapter.cpu).toBe(isCpuAdapter(p.adapter));
      expect(p.versions.dawn).toMatch(/^\d+\.\d+\.\d+/);
    } else {
      expect(p.reason).toMatch(/setup-webgpu\.sh|npm ci|glibc/);
      expect(p.reason).not.toMatch(/\n/);
    }
    expect(p.ok).toBe(webGpuExpected());
  });

  test('with no Vulkan driver to be found, the reason says what to install', () => {
    const p = probeWebGpu({ ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' });
    expect(p.ok).toBe(false);
    if (!p.ok) {
      expect(p.reason).toMatch(vulkanLoaderPresent() ? /^no WebGPU adapter: Vulkan finds no driver .*setup-webgpu\.sh/ : /^no WebGPU adapter: the Vulkan loader|npm ci/);
    }
  });
});

describe('scripts/setup-webgpu.sh', () => {
  const script = path.join(__dirname, '..', 'scripts', 'setup-webgpu.sh');
  const run = (env: NodeJS.ProcessEnv) => spawnSync('bash', [script], { env: { ...process.env, ...env }, encoding: 'utf8' });

  test('is valid bash', () => {
    expect(spawnSync('bash', ['-n', script]).status).toBe(0);
  });

  test('elsewhere than Debian, says what to install and fails', () => {
    const osRelease = path.join(os.tmpdir(), `ssl-os-release-${process.pid}`);
    fs.writeFileSync(osRelease, 'ID=fedora\nPRETTY_NAME="Fedora Linux 41"\n');
    try {
      const r = run({ SSL_OS_RELEASE: osRelease });
      expect(r.status).toBe(1);
      expect(r.stderr.trim()).toBe(
        "setup-webgpu: not Debian (Fedora Linux 41): install the Vulkan loader (libvulkan.so.1) and a Vulkan driver Dawn accepts (Mesa 25+ lavapipe for a CPU-only machine, or your GPU's driver), then check with: ssl env --backend webgpu",
      );
    } finally {
      fs.rmSync(osRelease, { force: true });
    }
  });

  // Only where it has nothing to do: a test must not install packages.
  const installed = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8' });
  const mesa = installed.status === 0 ? installed.stdout.trim() : '';
  const ready = mesa !== '' && spawnSync('dpkg', ['--compare-versions', mesa, 'ge', '25~']).status === 0 && spawnSync('dpkg-query', ['-W', 'libvulkan1']).status === 0;
  test(ready ? `on this Debian with Mesa ${mesa}, has nothing to do` : 'is not run here: it would install packages (Mesa 25 is not installed)', () => {
    if (!ready) {
      expect(mesa === '' || spawnSync('dpkg', ['--compare-versions', mesa, 'lt', '25~']).status === 0 || spawnSync('dpkg-query', ['-W', 'libvulkan1']).status !== 0).toBe(true);
      return;
    }
    const r = run({});
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^setup-webgpu: already installed\nsetup-webgpu: libvulkan1 \S+, mesa-vulkan-drivers 25/);
  });
});

const available = webGpuExpected();

if (!available) {
  test('without an adapter, --backend webgpu is a UserError with the reason and the fix', async () => {
    const err = (await selectBackend('webgpu').catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('UserError');
    expect(err.message).toMatch(/^backend 'webgpu' is not available \(webgpu: .*\); or use another backend \(--backend auto\)$/);
  });
} else {
  afterAll(() => releaseWebGpu());

  describe('--backend webgpu on this machine', () => {
    test('takes the adapter Dawn gives, CPU or not, and says which', async () => {
      const r = await selectBackend('webgpu');
      expect(r.name).toBe('webgpu');
      expect(tf.getBackend()).toBe('webgpu');
      expect(r.version).toBe('4.22.0');
      expect(r.source).toMatch(/^@tensorflow\/tfjs-backend-webgpu 4\.22\.0 with ssl's training kernels, on Dawn from webgpu \d/);
      expect(r.polyfills).toEqual(['Conv2DBackpropFilter', 'MaxPoolGrad']);
      const probe = probeWebGpu();
      expect(probe.ok && r.adapter).toEqual(probe.ok ? probe.adapter : undefined);
      const lines = describeBackend(r);
      expect(lines[0]).toBe(`Backend: webgpu 4.22.0 (${r.source})`);
      expect(lines[1]).toMatch(/^ {2}adapter: \S.* \(.*(a CPU adapter|a GPU)\)$/);
      expect(lines).toContain(`  driver: ${r.adapter!.description}`);
      expect(lines.find((l) => l.startsWith('  limits: '))).toMatch(/maxBufferSize \d+ MiB, maxStorageBufferBindingSize \d+ MiB/);
    });

    test('trains a convolution as the cpu backend does', async () => {
      await selectBackend('webgpu');
      const got = await convGradient();
      await selectBackend('cpu');
      const want = await convGradient();
      const scale = Math.max(...want.map(Math.abs));
      expect(Math.max(...got.map((v, i) => Math.abs(v - want[i])))).toBeLessThan(1e-5 * scale);
    });

    test('dataSync is refused with what to use instead, and data() works', async () => {
      await selectBackend('webgpu');
      // large enough not to be handed to the CPU (WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD)
      const t = tf.add(tf.range(0, 4096), 1);
      expect(() => t.dataSync()).toThrow(/cannot read GPU data synchronously in Node: use await tensor.data\(\)/);
      expect(Array.from((await t.data()).slice(0, 3))).toEqual([1, 2, 3]);
      // once read, the values are on the CPU and a synchronous read is fine
      expect(Array.from(t.dataSync().slice(0, 3))).toEqual([1, 2, 3]);
      t.dispose();
    });

    test('a tensor larger than the adapter can bind stops with one line, and a new device works again', async () => {
      const r = await selectBackend('webgpu');
      const limit = r.adapter!.limits.maxStorageBufferBindingSize;
      // only where that is cheap to provoke (lavapipe: 128 MiB); GPUs allow gigabytes
      if (limit > 2 ** 29) {
        expect(limit).toBeGreaterThan(2 ** 29);
        return;
      }
      const n = Math.ceil(limit / 4) + 1024;
      const y = tf.tidy(() => tf.add(tf.fill([n], 1.5), 1));
      const err = (await y.data().catch((e: unknown) => e)) as Error;
      y.dispose();
      expect(err.name).toBe('UserError');
      expect(err.message).toMatch(/^a tensor is too large for this WebGPU adapter \(.*maximum storage buffer binding size.*\); lower --batch or --eval-batch, or use another backend \(--backend wasm\)$/);
      releaseWebGpu();
      await selectBackend('webgpu');
      expect((await convGradient()).every(Number.isFinite)).toBe(true);
    });

    test('a released device is recreated by the next selection', async () => {
      await selectBackend('webgpu');
      const before = webGpuDevice();
      releaseWebGpu();
      expect(webGpuDevice()).toBeUndefined();
      expect(tf.findBackendFactory('webgpu')).toBeNull();
      expect((await selectBackend('webgpu')).name).toBe('webgpu');
      expect(webGpuDevice()).toBeDefined();
      expect(webGpuDevice()).not.toBe(before);
      expect((await convGradient()).every(Number.isFinite)).toBe(true);
    });
  });

  describe('checkpoints cross backends', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-webgpu-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    let serial = 0;
    /** Variables with the given values on the current backend. */
    function variables(values: Record<string, { shape: number[]; values: Float32Array }>): Map<string, tf.Variable> {
      return new Map(Object.entries(values).map(([k, v]) => [k, tf.variable(tf.tensor(v.values, v.shape), false, `ckpt-test-${++serial}/${k}`)]));
    }

    async function valuesOf(vars: Map<string, tf.Variable>): Promise<Record<string, number[]>> {
      const out: Record<string, number[]> = {};
      for (const [k, v] of vars) out[k] = Array.from(await v.data());
      return out;
    }

    test('saved on webgpu, restored on cpu and wasm bit for bit, and back', async () => {
      const original = {
        'conv/kernel': { shape: [3, 3, 2, 4], values: Float32Array.from({ length: 72 }, (_, i) => Math.sin(i) * 1e-3 + i) },
        'dense/bias': { shape: [5], values: Float32Array.from([0.1, -2.5, 3e-8, 1e10, -0]) },
      };
      const file = path.join(dir, 'model.ckpt-00000064.sslckpt');
      await selectBackend('webgpu');
      // values computed on the GPU, so that reading them back goes through a GPU buffer
      const onGpu = variables(original);
      for (const v of onGpu.values()) tf.tidy(() => v.assign(tf.mul(v, 1)));
      await saveCheckpoint(file, 64, { param: onGpu }, { note: 'webgpu' });
      const want = await valuesOf(onGpu);
      tf.dispose([...onGpu.values()]);

      for (const backend of ['cpu', 'wasm', 'webgpu']) {
        await selectBackend(backend);
        const ck = loadCheckpoint(file);
        const vars = variables({ 'conv/kernel': { shape: [3, 3, 2, 4], values: new Float32Array(72) }, 'dense/bias': { shape: [5], values: new Float32Array(5) } });
        restoreGroup(ck, 'param', vars, file);
        expect([backend, await valuesOf(vars)]).toEqual([backend, want]);
        // and written again from this backend, the file is the same
        const again = path.join(dir, `again-${backend}.sslckpt`);
        await saveCheckpoint(again, 64, { param: vars }, { note: 'webgpu' });
        expect(fs.readFileSync(again).equals(fs.readFileSync(file))).toBe(true);
        tf.dispose([...vars.values()]);
      }
    });
  });

  describe('a device lost in the middle of a run', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-webgpu-lost-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    function config(trainDir: string) {
      const a = getAlgorithm('supervised');
      const s = resolveSettings(a, {}, { arch: 'te_cnn', batch: 8, train_kimg: 1, report_kimg: 1, save_kimg: 1, eval_batch: 16, lr: 0.01 });
      return toTrainConfig(a, s, { trainDir, seed: 3, augment: 'none' });
    }

    const stopAfter = (n: number) => {
      let steps = 0;
      return () => ++steps > n;
    };

    test('stops the run with one line, and the run resumes on wasm from its last checkpoint, and back on webgpu', async () => {
      const cfg = config(dir);
      await selectBackend('webgpu');
      const first = await train(cfg, syntheticData(), { shouldStop: stopAfter(5) });
      expect(first.stopped).toBe(true);
      const ckptDir = path.join(first.runDir, 'tf');
      expect(listCheckpoints(ckptDir).map((c) => c.imagesSeen)).toEqual([40]);

      // resumed on webgpu; the device goes away two steps in
      let steps = 0;
      const err = (await train(cfg, syntheticData(), {
        onStep: () => {
          if (++steps === 2) webGpuDevice()!.destroy();
        },
      }).catch((e: unknown) => e)) as Error;
      expect(err).toBeInstanceOf(Error);
      expect(err.name).toBe('UserError');
      expect(err.message).toMatch(/^the WebGPU device was lost \(destroyed: .*\); its last checkpoint is backend-neutral: re-run the same command with --backend wasm \(or another backend\) to resume from it$/);
      expect(listCheckpoints(ckptDir).map((c) => c.imagesSeen)).toEqual([40]);

      // the same run on wasm picks up the checkpoint written on webgpu
      releaseWebGpu();
      await selectBackend('wasm');
      const onWasm = await train(cfg, syntheticData(), { shouldStop: stopAfter(3) });
      expect(onWasm.resumedFrom).toBe(40);
      expect(onWasm.imagesSeen).toBe(64);

      // and back on a new webgpu device, from the checkpoint written on wasm
      await selectBackend('webgpu');
      const back = await train(cfg, syntheticData(), { shouldStop: stopAfter(2) });
      expect(back.resumedFrom).toBe(64);
      expect(back.imagesSeen).toBe(80);

      // 5 steps on webgpu + 3 on wasm + 2 on webgpu end where 10 steps on wasm end
      const mixed = loadCheckpoint(listCheckpoints(ckptDir).pop()!.path);
      await selectBackend('wasm');
      const wasmRun = await train(config(path.join(dir, 'wasm')), syntheticData(), { shouldStop: stopAfter(10) });
      const ref = loadCheckpoint(listCheckpoints(path.join(wasmRun.runDir, 'tf')).pop()!.path);
      expect(ref.header.imagesSeen).toBe(80);
      for (const [name, t] of ref.tensors) {
        const u = mixed.tensors.get(name)!;
        let d = 0;
        for (let i = 0; i < t.values.length; i++) d = Math.max(d, Math.abs(t.values[i] - u.values[i]) / Math.max(1, Math.abs(t.values[i])));
        expect([name, d < 1e-4]).toEqual([name, true]);
      }
    });
  });
}
