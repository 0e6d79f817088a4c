import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { repoRoot, stdioGuard } from './native';

/**
 * The WebGPU backend: @tensorflow/tfjs-backend-webgpu on Dawn, which the npm package `webgpu`
 * ships prebuilt as `dawn.node` (on Linux it drives the GPU through Vulkan, loaded at run time).
 * Nothing here is loaded until webgpu is tried.
 *
 * - `probeWebGpu()` asks a child process which adapter Dawn would give, so that a process that ends
 *   up on another backend never creates a Vulkan instance (nor prints Dawn's start-up warnings, nor
 *   dies with a crashing driver). `--backend auto` uses webgpu only when that adapter is a real GPU.
 * - `loadWebGpuBackend()` creates the device in this process and registers it as the tfjs backend
 *   'webgpu' (tfjs-backend-webgpu's own registration is bypassed: it would take whatever adapter
 *   comes first, and could not say why there is none).
 * - A device lost mid-run turns the next read into a UserError that says how to resume elsewhere:
 *   checkpoints hold plain float32 values, so any backend resumes them.
 */

export const WEBGPU = 'webgpu';

/** The limits that decide what fits on the device, as `ssl env` shows them. */
export const KEY_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupsPerDimension',
] as const;

export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  /** Dawn's description; on Vulkan the driver's name and version ("llvmpipe: Mesa 25.0.7 ..."). */
  description: string;
  isFallbackAdapter: boolean;
  /** A CPU implementation (lavapipe/llvmpipe, SwiftShader, a fallback adapter) rather than a GPU. */
  cpu: boolean;
  limits: Record<string, number>;
}

/** The probe's answer; `inconclusive` when the child process itself could not run (the in-process load may still work). */
export type WebGpuProbe = { ok: true; adapter: WebGpuAdapter; versions: WebGpuVersions } | { ok: false; reason: string; inconclusive?: boolean };

export interface WebGpuVersions {
  /** the npm package `webgpu` (Dawn's node binding) */
  dawn: string;
  /** @tensorflow/tfjs-backend-webgpu */
  tfjs: string;
}

export const SETUP_ADVICE = 'run scripts/setup-webgpu.sh as root (Debian: libvulkan1 and Mesa 25 from bookworm-backports) or install your GPU\'s Vulkan driver';

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '(no message)';
}

/** Names and descriptions that software (CPU) Vulkan/WebGPU implementations give themselves. */
const CPU_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|\bsoftware\b/i;

/** Whether an adapter runs on the CPU: Dawn's fallback flag, architecture 'software', or a known software driver. */
export function isCpuAdapter(info: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean }): boolean {
  if (info.isFallbackAdapter === true) return true;
  if ((info.architecture ?? '').toLowerCase() === 'software' || (info.architecture ?? '').toLowerCase() === 'cpu') return true;
  return CPU_ADAPTER.test(`${info.vendor ?? ''} ${info.device ?? ''} ${info.description ?? ''}`);
}

/** The adapter's vendor and device: "mesa llvmpipe-llvm-15-0-6-256-bits-". */
function adapterLabel(a: WebGpuAdapter): string {
  return [a.vendor, a.device].filter((x) => x).join(' ') || 'an unnamed adapter';
}

/** The adapter's name and kind: "mesa llvmpipe-llvm-15-0-6-256-bits- (software, a CPU adapter)". */
export function adapterName(a: WebGpuAdapter): string {
  const name = adapterLabel(a);
  const kind = [a.architecture, a.cpu ? 'a CPU adapter' : 'a GPU'].filter((x) => x).join(', ');
  return `${name} (${kind})`;
}

/** The key limits, one line. */
export function limitsSummary(a: WebGpuAdapter): string {
  const fmt = (v: number) => (v >= 2 ** 20 ? `${Math.round(v / 2 ** 20)} MiB` : String(v));
  return KEY_LIMITS.filter((k) => a.limits[k] !== undefined)
    .map((k) => `${k} ${fmt(a.limits[k])}`)
    .join(', ');
}

/** Lines for `ssl env` and a run's log: the adapter, its driver and its key limits. */
export function describeAdapter(a: WebGpuAdapter, indent = '  '): string[] {
  return [`${indent}adapter: ${adapterName(a)}`, ...(a.description ? [`${indent}driver: ${a.description}`] : []), `${indent}limits: ${limitsSummary(a)}`];
}

// ---------------------------------------------------------------------------------------------
// Finding Dawn

interface DawnLocation {
  binary: string;
  version: string;
}

function packageVersion(pkgJson: string): string {
  try {
    return (JSON.parse(fs.readFileSync(pkgJson, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** dawn.node for this platform, from the `webgpu` package (which is ESM: its binary is required by path). */
export function locateDawn(): DawnLocation {
  let pkgJson: string;
  try {
    pkgJson = require.resolve('webgpu/package.json', { paths: [repoRoot()] });
  } catch {
    throw new Error("the npm package 'webgpu' (Dawn) is not installed; reinstall the dependencies (npm ci)");
  }
  const arch = process.platform === 'darwin' ? 'universal' : process.arch;
  const binary = path.join(path.dirname(pkgJson), 'dist', `${process.platform}-${arch}`, 'dawn.node');
  if (!fs.existsSync(binary)) throw new Error(`the npm package 'webgpu' has no Dawn build for ${process.platform}-${arch}`);
  return { binary, version: packageVersion(pkgJson) };
}

function tfjsWebGpuVersion(): string {
  try {
    return packageVersion(require.resolve('@tensorflow/tfjs-backend-webgpu/package.json', { paths: [repoRoot()] }));
  } catch {
    return 'not installed';
  }
}

// ---------------------------------------------------------------------------------------------
// Dawn's diagnostics

/**
 * Dawn writes warnings straight to stderr: on lavapipe two lines about limits it "artificially
 * reduced" on every adapter request, noise for a user. Other lines (why an adapter was refused)
 * are the useful part of its output.
 */
export function dawnMessages(stderr: string): string[] {
  const out: string[] = [];
  for (const raw of stderr.split('\n')) {
    const line = raw.trim();
    if (!line || /artificially reduced/.test(line)) continue;
    if (/^(- While|at )/.test(line)) continue; // Dawn's context and source location
    out.push(line.replace(/^Warning:\s*/, ''));
  }
  return out;
}

/** Where a Vulkan loader would be found: the dynamic linker's usual directories and LD_LIBRARY_PATH. */
export function vulkanLoaderPresent(env: NodeJS.ProcessEnv = process.env): boolean {
  if (process.platform !== 'linux') return true; // Dawn uses Metal or D3D there
  const dirs = [
    ...(env.LD_LIBRARY_PATH ?? '').split(':').filter((d) => d),
    `/usr/lib/${process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch}-linux-gnu`,
    '/usr/lib64',
    '/usr/lib',
    '/lib64',
    '/lib',
    '/usr/local/lib',
  ];
  return dirs.some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1')));
}

/**
 * Why Dawn gave no adapter, as one reason with what to do: no Vulkan loader, no driver, or a driver
 * Dawn refuses (Debian 12's Mesa 22 lavapipe lacks features Dawn requires).
 */
export function noAdapterReason(messages: string[], loaderPresent: boolean): string {
  if (!loaderPresent) return `no WebGPU adapter: the Vulkan loader (libvulkan.so.1) is not installed; ${SETUP_ADVICE}`;
  const said = messages.join(' ');
  if (/Found no drivers|VK_ERROR_INCOMPATIBLE_DRIVER|no suitable backends/i.test(said)) {
    return `no WebGPU adapter: Vulkan finds no driver (${messages[0]}); ${SETUP_ADVICE}`;
  }
  if (/required|not at least|Insufficient Vulkan|too old|not supported/i.test(said)) {
    const why = messages.find((m) => /required|not at least|Insufficient|too old|not supported/i.test(m)) ?? messages[0];
    return `no WebGPU adapter: Dawn refused the Vulkan driver as too old (${why}); update it (Debian 12: Mesa 25 from bookworm-backports, see scripts/setup-webgpu.sh)`;
  }
  return `no WebGPU adapter${messages.length ? ` (${messages[0]})` : ''}; ${SETUP_ADVICE}`;
}

/** Glibc too old for the prebuilt binary, or another load failure, as a reason. */
function dawnLoadReason(e: unknown): string {
  const line = firstLine(e);
  if (/GLIBC_\d/.test(line)) return `Dawn (dawn.node) needs a newer C library than this system has (${line.replace(/^.*?(version `GLIBC[^']*')/, '$1')}): it is built for glibc 2.34+`;
  return `Dawn (dawn.node) failed to load: ${line}`;
}

// ---------------------------------------------------------------------------------------------
// The probe, in a child process

/**
 * Runs in the child: loads dawn.node, asks for a high-performance adapter, prints one JSON line.
 * process.exit: Dawn's instance would otherwise keep the child alive.
 */
const PROBE_SCRIPT = `
const { create, globals } = require(process.env.SSL_DAWN_NODE);
Object.assign(globalThis, globals);
const out = (o) => { require('fs').writeSync(1, JSON.stringify(o) + '\\n'); process.exit(0); };
(async () => {
  const gpu = create([]);
  const a = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!a) return out({ adapter: null });
  const i = a.info || {};
  const limits = {};
  for (const k of ${JSON.stringify(KEY_LIMITS)}) if (typeof a.limits[k] === 'number') limits[k] = a.limits[k];
  out({ adapter: { vendor: i.vendor || '', architecture: i.architecture || '', device: i.device || '', description: i.description || '',
    isFallbackAdapter: i.isFallbackAdapter === true || a.isFallbackAdapter === true, limits } });
})().catch((e) => out({ error: String((e && e.message) || e) }));
`;

let probed: WebGpuProbe | undefined;

/**
 * Which adapter Dawn offers this machine, asked in a child process (cached for the process).
 * `env` is for tests: a probe with other Vulkan settings is not cached.
 */
export function probeWebGpu(env?: NodeJS.ProcessEnv): WebGpuProbe {
  if (probed && !env) return probed;
  const result = runProbe(env ?? process.env);
  if (!env) probed = result;
  return result;
}

function runProbe(env: NodeJS.ProcessEnv): WebGpuProbe {
  let dawn: DawnLocation;
  try {
    dawn = locateDawn();
  } catch (e) {
    return { ok: false, reason: firstLine(e) };
  }
  const versions = { dawn: dawn.version, tfjs: tfjsWebGpuVersion() };
  const r = spawnSync(process.execPath, ['-e', PROBE_SCRIPT], {
    env: { ...env, SSL_DAWN_NODE: dawn.binary },
    encoding: 'utf8',
    timeout: 60_000,
    maxBuffer: 1 << 20,
  });
  const messages = dawnMessages(r.stderr ?? '');
  if (r.error) return { ok: false, reason: `the WebGPU probe did not run: ${firstLine(r.error)}`, inconclusive: true };
  if (r.signal) return { ok: false, reason: `the WebGPU probe was killed by ${r.signal} (a crashing Vulkan driver?)${messages.length ? `: ${messages[0]}` : ''}` };
  const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('{'));
  if (!line) {
    const loadError = messages.find((m) => /Error:/.test(m)) ?? messages[0] ?? `exit code ${r.status}`;
    return { ok: false, reason: dawnLoadReason(loadError) };
  }
  const parsed = JSON.parse(line) as { adapter?: Omit<WebGpuAdapter, 'cpu'> | null; error?: string };
  if (parsed.error !== undefined) return { ok: false, reason: `requesting a WebGPU adapter failed: ${parsed.error}` };
  if (!parsed.adapter) return { ok: false, reason: noAdapterReason(messages, vulkanLoaderPresent(env)) };
  const adapter: WebGpuAdapter = { ...parsed.adapter, cpu: isCpuAdapter(parsed.adapter) };
  return { ok: true, adapter, versions };
}

// ---------------------------------------------------------------------------------------------
// Loading the backend in this process

/** The few members of Dawn's objects used here (the `webgpu` package's types would add a dependency). */
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}
interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<AdapterLike | null>;
}
interface AdapterLike {
  features: Set<string>;
  limits: Record<string, number>;
  info?: Record<string, unknown>;
  isFallbackAdapter?: boolean;
  requestDevice(descriptor?: { requiredFeatures?: string[]; requiredLimits?: Record<string, number> }): Promise<DeviceLike>;
}
interface DeviceLike {
  lost: Promise<{ reason: string; message: string }>;
  destroy(): void;
  addEventListener(type: 'uncapturederror', listener: (ev: { error: { message: string; constructor: { name: string } } }) => void): void;
}

type WebGpuBackendLike = tf.KernelBackend & {
  device: DeviceLike;
  read(dataId: object): Promise<tf.backend_util.BackendValues>;
  readSync(dataId: object): tf.backend_util.BackendValues;
};

export interface WebGpuLoaded {
  adapter: WebGpuAdapter;
  versions: WebGpuVersions;
}

/** What went wrong with the device, once it did: the next read reports it. */
let failure: { lost?: { reason: string; message: string }; error?: { kind: string; message: string } } = {};

/** The one line a run stopped by a lost device ends with: what happened and how to go on. */
export function deviceLostMessage(reason: string, message: string): string {
  const why = [reason, message].filter((s) => s && s !== 'undefined').join(': ') || 'no reason given';
  return `the WebGPU device was lost (${why}); its last checkpoint is backend-neutral: re-run the same command with --backend wasm (or another backend) to resume from it`;
}

/** Throws what the device has reported, if anything: the read that notices is where the run stops. */
function throwIfFailed(): void {
  if (failure.lost) throw new UserError(deviceLostMessage(failure.lost.reason, failure.lost.message));
  const err = failure.error;
  if (err) throw webGpuError(err.kind, err.message);
}

/**
 * The error for what the device reported: running out of memory, or a tensor larger than the
 * adapter lets a kernel bind, is the user's to fix (a smaller batch, another backend); anything
 * else is a bug.
 */
export function webGpuError(kind: string, message: string): Error {
  if (kind === 'GPUOutOfMemoryError') return new UserError(`the WebGPU device ran out of memory (${message}); lower --batch, or use another backend (--backend wasm)`);
  if (/larger than the maximum (storage buffer binding|buffer) size/i.test(message)) {
    return new UserError(`a tensor is too large for this WebGPU adapter (${message}); lower --batch or --eval-batch, or use another backend (--backend wasm)`);
  }
  return new Error(`WebGPU ${kind}: ${message}`);
}

function installGlobals(dawn: DawnModule, gpu: GpuLike): void {
  const g = globalThis as Record<string, unknown>;
  for (const [k, v] of Object.entries(dawn.globals)) if (g[k] === undefined) g[k] = v;
  // Node 21+ has a navigator of its own (without gpu); Node 20 has none.
  const nav = (g.navigator ?? {}) as Record<string, unknown>;
  Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true, writable: true });
  if (g.navigator !== nav) Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true, writable: true });
}


/**
 * Runs `fn` with fd 2 captured where that is possible, then passes on what was written except
 * Dawn's limit warnings; returns the result and Dawn's other messages.
 */
async function withDawnStderr<T>(fn: () => Promise<T>): Promise<{ value?: T; error?: unknown; messages: string[] }> {
  const guard = stdioGuard();
  const capture = path.join(os.tmpdir(), `ssl-dawn-${process.pid}-${Date.now()}.log`);
  let saved: number | undefined;
  try {
    saved = guard?.redirectStderr(capture);
  } catch {
    saved = undefined;
  }
  let value: T | undefined;
  let error: unknown;
  try {
    value = await fn();
  } catch (e) {
    error = e;
  }
  let messages: string[] = [];
  if (guard && saved !== undefined) {
    guard.restoreStderr(saved);
    let text = '';
    try {
      text = fs.readFileSync(capture, 'utf8');
      fs.rmSync(capture, { force: true });
    } catch {
      /* nothing captured */
    }
    messages = dawnMessages(text);
    const kept = text.split('\n').filter((l) => l && !/artificially reduced/.test(l));
    // An adapter that came is quiet; an adapter refused is explained by the reason instead.
    if (value != null && kept.length) process.stderr.write(`${kept.join('\n')}\n`);
  }
  return { value, error, messages };
}

function adapterOf(a: AdapterLike): WebGpuAdapter {
  const i = (a.info ?? {}) as Record<string, unknown>;
  const s = (k: string) => (typeof i[k] === 'string' ? (i[k] as string) : '');
  const limits: Record<string, number> = {};
  for (const k of KEY_LIMITS) if (typeof a.limits[k] === 'number') limits[k] = a.limits[k];
  const info = { vendor: s('vendor'), architecture: s('architecture'), device: s('device'), description: s('description'), isFallbackAdapter: i.isFallbackAdapter === true || a.isFallbackAdapter === true };
  return { ...info, cpu: isCpuAdapter(info), limits };
}

function makeBackend(BackendClass: new (device: DeviceLike, info: unknown) => WebGpuBackendLike, dev: DeviceLike, info: unknown): WebGpuBackendLike {
  const backend = new BackendClass(dev, info);
  const read = backend.read.bind(backend);
  backend.read = async (dataId) => {
    throwIfFailed();
    try {
      return await read(dataId);
    } catch (e) {
      // A lost device fails the read first and reports why a moment later.
      await new Promise((r) => setTimeout(r, 10));
      throwIfFailed();
      throw e;
    }
  };
  const readSync = backend.readSync.bind(backend);
  backend.readSync = (dataId) => {
    throwIfFailed();
    const data = (backend as unknown as { tensorMap: { get(id: object): { values?: unknown; dtype: string } } }).tensorMap.get(dataId);
    if (data.values == null && data.dtype !== 'string' && data.dtype !== 'complex64') {
      // tfjs reads synchronously through an OffscreenCanvas, which Node has not.
      throw new Error('the webgpu backend cannot read GPU data synchronously in Node: use await tensor.data() instead of dataSync()/arraySync()');
    }
    return readSync(dataId);
  };
  return backend;
}

/**
 * Options for Dawn's instance from $SSL_DAWN_FLAGS, separated by spaces, e.g.
 * "enable-dawn-features=disable_robustness backend=vulkan" (README of the `webgpu` package).
 */
export function dawnFlags(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env.SSL_DAWN_FLAGS ?? '').split(/\s+/).filter((f) => f.length > 0);
}

/** The device in use and what re-registering its backend needs. */
interface Current {
  device: DeviceLike;
  /** Dawn's instance: dropping the last reference to it lets Node exit. */
  gpu: GpuLike;
  BackendClass: new (device: DeviceLike, info: unknown) => WebGpuBackendLike;
  info: unknown;
  loaded: WebGpuLoaded;
}

let current: Current | undefined;
let loading: Promise<Current> | undefined;

/** Registers the 'webgpu' backend on the current device unless it is registered (a test may have removed it). */
function ensureRegistered(c: Current): void {
  if (tf.findBackendFactory(WEBGPU) != null) return;
  // Priority 0: tfjs never picks it by itself; src/backend/select.ts names it.
  tf.registerBackend(WEBGPU, () => makeBackend(c.BackendClass, c.device, c.info), 0);
}

/**
 * Creates the WebGPU device (once) and registers it as tfjs's 'webgpu' backend; does not select
 * it. `allowCpuAdapter` false refuses a software adapter (auto selection); true takes whatever
 * adapter Dawn gives. Throws an Error with one line saying why and what to do.
 */
export async function loadWebGpuBackend(allowCpuAdapter: boolean): Promise<WebGpuLoaded> {
  if (!loading) {
    loading = createDevice();
    loading.catch(() => (loading = undefined));
  }
  const c = await loading;
  if (!allowCpuAdapter && c.loaded.adapter.cpu) throw new Error(cpuAdapterReason(c.loaded.adapter));
  ensureRegistered(c);
  return c.loaded;
}

export function cpuAdapterReason(a: WebGpuAdapter): string {
  return `the only adapter, ${adapterLabel(a)}, runs on the CPU (slower than the CPU backends); --backend webgpu uses it anyway`;
}

async function createDevice(): Promise<Current> {
  const where = locateDawn();
  let dawn: DawnModule;
  try {
    dawn = require(where.binary) as DawnModule;
  } catch (e) {
    throw new Error(dawnLoadReason(e));
  }
  // Required before navigator.gpu exists, so that it registers its kernels but not its own backend factory.
  let pkg: { WebGPUBackend: Current['BackendClass'] };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    pkg = require('@tensorflow/tfjs-backend-webgpu');
  } catch (e) {
    throw new Error(`@tensorflow/tfjs-backend-webgpu failed to load: ${firstLine(e)}; reinstall the dependencies (npm ci)`);
  }
  if (tf.getKernel('Conv2D', WEBGPU) == null) {
    throw new Error('@tensorflow/tfjs-backend-webgpu registered its kernels with another copy of @tensorflow/tfjs-core; reinstall the dependencies (npm ci)');
  }
  const gpu = dawn.create(dawnFlags());
  installGlobals(dawn, gpu);
  const got = await withDawnStderr(() => gpu.requestAdapter({ powerPreference: 'high-performance' }));
  if (got.error !== undefined) throw new Error(`requesting a WebGPU adapter failed: ${firstLine(got.error)}`);
  const adapter = got.value;
  if (!adapter) {
    if (got.messages.length) throw new Error(noAdapterReason(got.messages, vulkanLoaderPresent()));
    // Without the stderr guard Dawn's reasons went to the terminal: a probe captures them.
    const p = runProbe(process.env);
    throw new Error(p.ok ? noAdapterReason([], vulkanLoaderPresent()) : p.reason);
  }
  const description = adapterOf(adapter);
  const requiredLimits: Record<string, number> = {};
  // What tfjs-backend-webgpu asks for: the adapter's maxima for the limits its kernels depend on.
  for (const k of ['maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxComputeWorkgroupSizeX', 'maxComputeInvocationsPerWorkgroup']) {
    if (typeof adapter.limits[k] === 'number') requiredLimits[k] = adapter.limits[k];
  }
  // tf.profile reads kernel times through timestamp queries where the adapter has them
  const requiredFeatures = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
  let dev: DeviceLike;
  try {
    dev = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  } catch (e) {
    throw new Error(`the WebGPU adapter ${adapterName(description)} refused a device: ${firstLine(e)}`);
  }
  failure = {};
  // A device released on purpose (releaseWebGpu) is no longer current by the time this runs.
  void dev.lost.then((info) => {
    if (current?.device === dev) failure.lost = { reason: String(info.reason), message: String(info.message ?? '') };
  });
  dev.addEventListener('uncapturederror', (ev) => {
    if (current?.device === dev) failure.error ??= { kind: ev.error?.constructor?.name ?? 'GPUError', message: firstLine(ev.error?.message ?? 'unknown error') };
  });
  if (tf.findBackendFactory(WEBGPU) != null) tf.removeBackend(WEBGPU);
  current = { device: dev, gpu, BackendClass: pkg.WebGPUBackend, info: adapter.info, loaded: { adapter: description, versions: { dawn: where.version, tfjs: tfjsWebGpuVersion() } } };
  return current;
}

/** The device of the loaded backend, for tests that simulate a lost device. */
export function webGpuDevice(): DeviceLike | undefined {
  return current?.device;
}

/**
 * Unregisters the 'webgpu' backend, destroys its device and drops Dawn's instance so that Node
 * can exit; a later loadWebGpuBackend creates a fresh device.
 */
export function releaseWebGpu(): void {
  const c = current;
  if (!c) return;
  current = undefined;
  loading = undefined;
  failure = {};
  if (tf.findBackendFactory(WEBGPU) != null) {
    // removing the active backend would leave tfjs with none; cpu is always there
    if (tf.getBackend() === WEBGPU) void tf.setBackend('cpu');
    tf.removeBackend(WEBGPU);
  }
  c.device.destroy();
  const nav = (globalThis as { navigator?: Record<string, unknown> }).navigator;
  if (nav?.gpu === c.gpu) delete nav.gpu;
}
