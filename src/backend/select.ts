import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { loadNativeBackend, readBuildInfo, readInstallResult } from './native';
import { installWasmTrainingKernels } from './wasm-training';

/**
 * Picks the tfjs backend: 'tensorflow' (native TensorFlow, see ./native), else 'wasm' (with the
 * training kernels of ./wasm-training), else the plain JS 'cpu' backend. `--backend` or
 * $SSL_BACKEND can name one; a named backend that cannot load is a UserError.
 */

export interface BackendReport {
  /** the tfjs backend name now in use: 'tensorflow', 'wasm' or 'cpu' */
  name: string;
  /** TensorFlow's version for 'tensorflow'; the tfjs package version otherwise */
  version: string;
  /** how it got here, one line */
  source: string;
  /** backends tried first, and why they were passed over */
  skipped: Array<{ name: string; reason: string }>;
  /** kernels ssl supplies where the backend lacks them (or has slow ones) */
  polyfills: string[];
}

export const BACKEND_CHOICES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

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
/** A backend that loaded (and what it passed over on the way), or why it did not. */
type Attempt = { ok: true; report: Omit<BackendReport, 'skipped'>; passedOver?: Skipped } | { ok: false; skipped: Skipped };

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
  return {
    ok: true,
    report: { name: 'tensorflow', version: native.tfVersion, source: `${native.detail}, ${gpu ? 'on the GPU' : 'on the CPU'}`, polyfills: [] },
    passedOver,
  };
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

const TRY: Record<Exclude<BackendChoice, 'auto'>, () => Promise<Attempt>> = { tensorflow: tryTensorflow, wasm: tryWasm, cpu: tryCpu };

const ADVICE: Record<Exclude<BackendChoice, 'auto'>, string> = {
  tensorflow: 'build it with `npm run native` (README, "Native backend"), or use --backend auto',
  wasm: 'reinstall the dependencies (npm ci), or use --backend cpu',
  cpu: 'reinstall the dependencies (npm ci)',
};

async function select(choice: BackendChoice): Promise<BackendReport> {
  if (choice !== 'auto') {
    const a = await TRY[choice]();
    if (a.ok) return { ...a.report, skipped: a.passedOver ?? [] };
    const why = a.skipped.map((s) => `${s.name}: ${s.reason}`).join('; ');
    throw new UserError(`backend '${choice}' is not available (${why}); ${ADVICE[choice]}`);
  }
  const skipped: Skipped = [];
  for (const name of ['tensorflow', 'wasm', 'cpu'] as const) {
    const a = await TRY[name]();
    if (a.ok) return { ...a.report, skipped: [...skipped, ...(a.passedOver ?? [])] };
    skipped.push(...a.skipped);
  }
  throw new Error(`no tfjs backend could be loaded: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

const reports = new Map<BackendChoice, Promise<BackendReport>>();

/**
 * Selects the backend (`requested`: auto | tensorflow | wasm | cpu; default $SSL_BACKEND, else
 * auto) and says how. Idempotent: the same request returns the same report (and re-selects that
 * backend if something switched away from it meanwhile).
 */
export async function selectBackend(requested?: string): Promise<BackendReport> {
  const choice = parseBackendChoice(requested ?? process.env.SSL_BACKEND);
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
  if (report.polyfills.length) lines.push(`  polyfilled kernels: ${report.polyfills.join(', ')}`);
  for (const s of report.skipped) lines.push(`  skipped ${s.name}: ${s.reason}`);
  return lines;
}

/** Everything `ssl env` shows about the native build, for the JSON output. */
export function nativeInstallState(): { buildInfo: ReturnType<typeof readBuildInfo>; lastInstall: ReturnType<typeof readInstallResult> } {
  return { buildInfo: readBuildInfo(), lastInstall: readInstallResult() };
}
