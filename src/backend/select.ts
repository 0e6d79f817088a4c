import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { installNativeKernels, replacedNativeKernels } from './native-kernels';
import { loadNativeBackend, readBuildInfo, readInstallResult } from './native';
import { installWasmTrainingKernels } from './wasm-training';
import { WEBGPU, cpuAdapterReason, describeAdapter, loadWebGpuBackend, probeWebGpu, type WebGpuAdapter } from './webgpu';
import { installWebGpuTrainingKernels, webGpuPolyfills } from './webgpu-training';

/**
 * Picks the tfjs backend. Automatically, the first of: 'tensorflow' (native TensorFlow, see
 * ./native) when it runs on a GPU; 'webgpu' (./webgpu) when Dawn finds a real GPU adapter;
 * 'tensorflow' on the CPU; 'wasm' (with the training kernels of ./wasm-training); the plain JS
 * 'cpu' backend. `--backend` or $SSL_BACKEND can name one (a named webgpu takes a CPU adapter such
 * as lavapipe too); a named backend that cannot load is a UserError.
 */

export interface BackendReport {
  /** the tfjs backend name now in use: 'tensorflow', 'webgpu', 'wasm' or 'cpu' */
  name: string;
  /** TensorFlow's version for 'tensorflow'; the tfjs package version otherwise */
  version: string;
  /** how it got here, one line */
  source: string;
  /** backends tried first, and why they were passed over */
  skipped: Array<{ name: string; reason: string }>;
  /** kernels ssl supplies where the backend lacks them (or has slow ones) */
  polyfills: string[];
  /** for 'webgpu': the adapter it runs on */
  adapter?: WebGpuAdapter;
}

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** The help text of every command's --backend option. */
export const BACKEND_HELP = 'tensorflow, webgpu, wasm, cpu or auto (default: $SSL_BACKEND, else auto)';

const WASM_OWNER = Symbol.for('ssl.wasm-training');

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '(no message)';
}

export function parseBackendChoice(requested: string | undefined): BackendChoice {
  const name = (requested ?? '').trim().toLowerCase() || 'auto';
  if ((BACKEND_CHOICES as readonly string[]).includes(name)) return name as BackendChoice;
  throw new UserError(`unknown backend '${requested}': valid names are ${BACKEND_CHOICES.join(', ')} (--backend or $SSL_BACKEND)`);
}

type Skipped = BackendReport['skipped'];
/** A backend that loaded and is selected (and what it passed over on the way), or why it did not load. */
export type Attempt = { ok: true; report: Omit<BackendReport, 'skipped'>; passedOver?: Skipped; gpu?: boolean } | { ok: false; skipped: Skipped };

async function tryTensorflow(): Promise<Attempt> {
  const native = loadNativeBackend();
  const passedOver = (native.reasons ?? []).map((r) => ({ name: `tensorflow (${r.candidate})`, reason: r.reason }));
  if (!native.ok) return { ok: false, skipped: passedOver };
  try {
    if (!(await tf.setBackend('tensorflow'))) throw new Error('the backend failed to initialise');
  } catch (e) {
    return { ok: false, skipped: [...passedOver, { name: `tensorflow (${native.source})`, reason: `loaded, but ${firstLine(e)}` }] };
  }
  const gpu = (tf.backend() as unknown as { isUsingGpuDevice?: boolean }).isUsingGpuDevice === true;
  // single TensorFlow ops where tfjs composes many (CPU only; see ./native-kernels)
  installNativeKernels();
  return {
    ok: true,
    report: { name: 'tensorflow', version: native.tfVersion, source: `${native.detail}, ${gpu ? 'on the GPU' : 'on the CPU'}`, polyfills: gpu ? [] : replacedNativeKernels() },
    passedOver,
    gpu,
  };
}

/**
 * webgpu on any adapter Dawn gives (`anyAdapter`), or only on a real GPU. A probe in a child
 * process comes first: without an adapter (or with a CPU one, for auto) nothing loads here, and
 * Dawn's own messages stay out of the terminal.
 */
async function tryWebGpu(anyAdapter: boolean): Promise<Attempt> {
  const skip = (reason: string): Attempt => ({ ok: false, skipped: [{ name: WEBGPU, reason }] });
  const p = probeWebGpu();
  if (!p.ok && !p.inconclusive) return skip(p.reason);
  if (p.ok && p.adapter.cpu && !anyAdapter) return skip(cpuAdapterReason(p.adapter));
  try {
    const { adapter, versions } = await loadWebGpuBackend(anyAdapter);
    installWebGpuTrainingKernels();
    if (!(await tf.setBackend(WEBGPU))) throw new Error('the backend failed to initialise');
    const polyfills = webGpuPolyfills();
    const what = polyfills.length ? " with ssl's training kernels" : '';
    return {
      ok: true,
      report: { name: WEBGPU, version: versions.tfjs, source: `@tensorflow/tfjs-backend-webgpu ${versions.tfjs}${what}, on Dawn from webgpu ${versions.dawn}`, polyfills, adapter },
    };
  } catch (e) {
    return skip(firstLine(e));
  }
}

async function tryWasm(): Promise<Attempt> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    // Before the backend initialises: the replacement kernels reuse stock setup functions.
    installWasmTrainingKernels();
    if (!(await tf.setBackend('wasm'))) throw new Error('the backend failed to initialise');
    const polyfills = tf
      .getKernelsForBackend('wasm')
      .filter((k) => (k as unknown as Record<symbol, unknown>)[WASM_OWNER] === true)
      .map((k) => k.kernelName)
      .sort();
    const what = polyfills.length ? " with ssl's training kernels" : '';
    return { ok: true, report: { name: 'wasm', version: wasm.version_wasm, source: `@tensorflow/tfjs-backend-wasm ${wasm.version_wasm}${what}`, polyfills } };
  } catch (e) {
    return { ok: false, skipped: [{ name: 'wasm', reason: firstLine(e) }] };
  }
}

async function tryCpu(): Promise<Attempt> {
  try {
    if (!(await tf.setBackend('cpu'))) throw new Error('the backend failed to initialise');
    const v = tf.version['tfjs-backend-cpu'] ?? tf.version_core;
    return { ok: true, report: { name: 'cpu', version: v, source: `@tensorflow/tfjs-backend-cpu ${v} (plain JavaScript, slow)`, polyfills: [] } };
  } catch (e) {
    return { ok: false, skipped: [{ name: 'cpu', reason: firstLine(e) }] };
  }
}

const TRY: Record<Exclude<BackendChoice, 'auto'>, () => Promise<Attempt>> = { tensorflow: tryTensorflow, webgpu: () => tryWebGpu(true), wasm: tryWasm, cpu: tryCpu };

const ADVICE: Record<Exclude<BackendChoice, 'auto'>, string> = {
  tensorflow: 'build it with `npm run native` (README, "Native backend"), or use --backend auto',
  webgpu: 'or use another backend (--backend auto)',
  wasm: 'reinstall the dependencies (npm ci), or use --backend cpu',
  cpu: 'reinstall the dependencies (npm ci)',
};

/** What automatic selection tries; tests pass stubs. */
export interface AutoAttempts {
  tensorflow(): Promise<Attempt>;
  /** webgpu on a real GPU adapter only */
  webgpuOnGpu(): Promise<Attempt>;
  wasm(): Promise<Attempt>;
  cpu(): Promise<Attempt>;
}

const AUTO: AutoAttempts = { tensorflow: tryTensorflow, webgpuOnGpu: () => tryWebGpu(false), wasm: tryWasm, cpu: tryCpu };

/**
 * The automatic order: GPUs first (native TensorFlow on one, then WebGPU on a real GPU adapter),
 * then the CPU backends (native TensorFlow, wasm, the plain JS cpu backend). The report's backend
 * is the one to select (selectBackend re-selects it: a failed attempt can leave tfjs elsewhere).
 */
export async function selectAutomatically(attempts: AutoAttempts = AUTO): Promise<BackendReport> {
  const skipped: Skipped = [];
  const native = await attempts.tensorflow();
  if (native.ok && native.gpu) return { ...native.report, skipped: native.passedOver ?? [] };
  if (!native.ok) skipped.push(...native.skipped);
  const webgpu = await attempts.webgpuOnGpu();
  if (webgpu.ok) {
    const passed: Skipped = native.ok ? [...(native.passedOver ?? []), { name: 'tensorflow', reason: `${native.report.source}; a WebGPU GPU adapter comes first` }] : [];
    return { ...webgpu.report, skipped: [...skipped, ...passed] };
  }
  skipped.push(...webgpu.skipped);
  if (native.ok) return { ...native.report, skipped: [...(native.passedOver ?? []), ...skipped] };
  for (const name of ['wasm', 'cpu'] as const) {
    const a = await attempts[name]();
    if (a.ok) return { ...a.report, skipped: [...skipped, ...(a.passedOver ?? [])] };
    skipped.push(...a.skipped);
  }
  throw new Error(`no tfjs backend could be loaded: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

async function select(choice: BackendChoice): Promise<BackendReport> {
  if (choice === 'auto') return selectAutomatically();
  const a = await TRY[choice]();
  if (a.ok) return { ...a.report, skipped: a.passedOver ?? [] };
  const why = a.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
  throw new UserError(`backend '${choice}' is not available (${why}); ${ADVICE[choice]}`);
}

const reports = new Map<BackendChoice, Promise<BackendReport>>();

/**
 * Selects the backend (`requested`: auto | tensorflow | webgpu | wasm | cpu; default $SSL_BACKEND, else
 * auto) and says how. Idempotent: the same request returns the same report (and re-selects that
 * backend if something switched away from it meanwhile).
 */
export async function selectBackend(requested?: string): Promise<BackendReport> {
  const choice = parseBackendChoice(requested ?? process.env.SSL_BACKEND);
  // a released WebGPU device (releaseWebGpu) is gone with its backend: select afresh
  for (const [c, r] of reports) if ((await r.catch(() => undefined))?.name === WEBGPU && tf.findBackendFactory(WEBGPU) == null) reports.delete(c);
  let p = reports.get(choice);
  if (!p) {
    p = select(choice);
    reports.set(choice, p);
    p.catch(() => reports.delete(choice));
  }
  const report = await p;
  if (tf.getBackend() !== report.name) await tf.setBackend(report.name);
  return report;
}

/** Lines for a log or `ssl env`: the backend, where it came from, and what was passed over. */
export function describeBackend(report: BackendReport): string[] {
  const lines = [`Backend: ${report.name} ${report.version} (${report.source})`];
  if (report.adapter) lines.push(...describeAdapter(report.adapter));
  if (report.polyfills.length) lines.push(`  polyfilled kernels: ${report.polyfills.join(', ')}`);
  for (const s of report.skipped) lines.push(`  skipped ${s.name}: ${s.reason}`);
  return lines;
}

/** Everything `ssl env` shows about the native build, for the JSON output. */
export function nativeInstallState(): { buildInfo: ReturnType<typeof readBuildInfo>; lastInstall: ReturnType<typeof readInstallResult> } {
  return { buildInfo: readBuildInfo(), lastInstall: readInstallResult() };
}
