import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * Loading the native TensorFlow backend ('tensorflow'), from the first of:
 *   1. @tensorflow/tfjs-node-gpu, 2. @tensorflow/tfjs-node (the stock packages, when their install
 *   script managed to download libtensorflow and the addon), 3. <repo>/native/tfjs-node, the same
 *   tfjs-node 4.22.0 compiled against the libtensorflow inside a TensorFlow wheel by
 *   scripts/install-native.js at `npm install` time.
 * A build whose BUILD_INFO.json says `preferOverStock` (it sees the GPU that a stock package
 * could not) is tried first.
 *
 * Only one of them may ever be loaded into a process: each registers the 'tensorflow' backend
 * and all its kernels. So each candidate's addon is loaded on its own first (that fails cleanly
 * when libtensorflow is missing), and the package only when its addon loaded.
 */

export type NativeSource = 'tfjs-node-gpu' | 'tfjs-node' | 'wheel';

export type NativeLoadResult =
  | {
      ok: true;
      name: 'tensorflow';
      source: NativeSource;
      detail: string;
      tfVersion: string;
      /** candidates tried before the one that loaded, and why they failed */
      reasons?: Array<{ candidate: string; reason: string }>;
    }
  | { ok: false; reasons: Array<{ candidate: string; reason: string }> };

/** native/BUILD_INFO.json, written by scripts/install-native.js once a wheel build is complete. */
export interface NativeBuildInfo {
  schema: number;
  source: 'wheel';
  wheel: { file: string; path: string; size: number; given: string; distribution?: string; version?: string };
  tfVersion: string;
  gpu: boolean;
  gpuMachine: boolean;
  preferOverStock: boolean;
  tfjsNode: { version: string; integrity?: string };
  node: string;
  builtAt: string;
  buildSeconds: number;
  log: string;
}

/** native/INSTALL_RESULT.json: what the last run of scripts/install-native.js did. */
export interface NativeInstallResult {
  outcome: 'stock' | 'built' | 'cached' | 'skipped' | 'failed';
  detail: string;
  at: string;
  log?: string;
}

/** The repository root: the nearest directory above this file with ssl's package.json (src/ or dist/src/). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      try {
        if ((JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string }).name === 'ssl') return dir;
      } catch {
        /* keep walking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(__dirname, '..', '..');
    dir = up;
  }
}

export function nativeDir(): string {
  return path.join(repoRoot(), 'native');
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function readBuildInfo(): NativeBuildInfo | undefined {
  const info = readJson<NativeBuildInfo>(path.join(nativeDir(), 'BUILD_INFO.json'));
  return info?.source === 'wheel' ? info : undefined;
}

export function readInstallResult(): NativeInstallResult | undefined {
  return readJson<NativeInstallResult>(path.join(nativeDir(), 'INSTALL_RESULT.json'));
}

function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '(no message)';
}

interface PackageJson {
  name?: string;
  version?: string;
  main?: string;
  binary?: { module_name?: string; module_path?: string; napi_versions?: number[] };
}

/** Where node-pre-gyp (which tfjs-node's index.js asks) puts the addon for this Node. */
function addonPath(pkgDir: string, pj: PackageJson): string {
  const napi = Number(process.versions.napi ?? 8);
  const supported = (pj.binary?.napi_versions ?? [8]).filter((v) => v <= napi);
  const v = supported.length ? Math.max(...supported) : 8;
  const modulePath = (pj.binary?.module_path ?? './lib/napi-v{napi_build_version}').replace('{napi_build_version}', String(v));
  return path.resolve(pkgDir, modulePath, `${pj.binary?.module_name ?? 'tfjs_binding'}.node`);
}

interface StdioGuard {
  redirectStderr(file: string): number;
  restoreStderr(fd: number): void;
}

/** The optional fd-2 redirector that scripts/install-native.js builds next to the binding. */
export function stdioGuard(): StdioGuard | undefined {
  const file = path.join(nativeDir(), 'tfjs-node', 'ssl-stdio-guard', 'stdio_guard.node');
  if (!fs.existsSync(file)) return undefined;
  try {
    return require(file) as StdioGuard;
  } catch {
    return undefined;
  }
}

/** absl/TF log lines: `I0000 00:00:…` (absl) or `2025-01-01 00:00:00.0: I …` (TF <= 2.15). */
const LOG_LINE = /^(?:([IWEF])\d{4} |\d{4}-\d\d-\d\d [\d:.]+: ([IWEF]) )/;

/**
 * Runs `load` (a synchronous addon require) with fd 2 captured, then passes on what libtensorflow
 * wrote except its INFO lines: with oneDNN on, TF 2.21 announces it through absl while loading,
 * and TF_CPP_MIN_LOG_LEVEL cannot silence that (absl is not initialised yet). Warnings and errors
 * (a missing CUDA library, say) still show; TF_CPP_MIN_LOG_LEVEL=0 turns the filter off.
 */
function withQuietTensorflowLoad<T>(load: () => T): T {
  const guard = process.env.TF_CPP_MIN_LOG_LEVEL === '0' ? undefined : stdioGuard();
  if (!guard) return load();
  const capture = path.join(os.tmpdir(), `ssl-tf-load-${process.pid}-${Date.now()}.log`);
  let saved: number;
  try {
    saved = guard.redirectStderr(capture);
  } catch {
    return load();
  }
  try {
    return load();
  } finally {
    guard.restoreStderr(saved);
    let text = '';
    try {
      text = fs.readFileSync(capture, 'utf8');
      fs.rmSync(capture, { force: true });
    } catch {
      /* nothing captured */
    }
    const kept = tensorflowLogWithoutInfo(text);
    if (kept.length) process.stderr.write(`${kept.join('\n')}\n`);
  }
}

/** The lines of a libtensorflow log that are not INFO messages (or continuations of one). */
export function tensorflowLogWithoutInfo(text: string): string[] {
  let keep = true;
  const kept: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (/^WARNING: All log messages before absl::InitializeLog\(\) is called/.test(line)) continue;
    const m = LOG_LINE.exec(line);
    if (m) keep = (m[1] ?? m[2]) !== 'I';
    if (keep) kept.push(line);
  }
  return kept;
}

interface Loaded {
  tfVersion: string;
  version: string;
}

/** Loads one tfjs-node package directory: addon first, then the package. Throws a short reason. */
function loadPackageDir(pkgDir: string): Loaded {
  const pj = readJson<PackageJson>(path.join(pkgDir, 'package.json'));
  if (!pj) throw new Error('package.json unreadable');
  const addon = addonPath(pkgDir, pj);
  if (!fs.existsSync(addon)) {
    throw new Error(`installed, but its native addon was never built (${path.relative(pkgDir, addon)} missing: install script blocked or failed)`);
  }
  let binding: { TF_Version?: string };
  try {
    binding = withQuietTensorflowLoad(() => require(addon) as { TF_Version?: string });
  } catch (e) {
    throw new Error(`binding failed to load: ${firstLine(e)}`);
  }
  try {
    require(pkgDir);
  } catch (e) {
    throw new Error(`package failed to load: ${firstLine(e)}`);
  }
  // tfjs-node registers its backend with the @tensorflow/tfjs it resolves; it must be ours.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const tf = require('@tensorflow/tfjs') as typeof import('@tensorflow/tfjs');
  if (tf.findBackendFactory('tensorflow') == null) {
    throw new Error(`loaded, but registered its backend with another copy of @tensorflow/tfjs (${require.resolve('@tensorflow/tfjs', { paths: [pkgDir] })})`);
  }
  return { tfVersion: binding.TF_Version ?? 'unknown', version: pj.version ?? 'unknown' };
}

function resolvePackageDir(name: string): string | undefined {
  try {
    return path.dirname(require.resolve(`${name}/package.json`, { paths: [repoRoot()] }));
  } catch {
    return undefined;
  }
}

function wheelNotBuiltReason(): string {
  const r = readInstallResult();
  if (r?.outcome === 'skipped') return 'not built: SSL_SKIP_NATIVE=1 at install; run `npm run native` to build it (see README)';
  if (r?.outcome === 'failed') return `not built: the install-time build failed (${r.detail})${r.log ? `; log ${r.log}` : ''}; run \`npm run native\` to retry`;
  return 'not built: run `npm run native` (see README, "Native backend")';
}

let cached: NativeLoadResult | undefined;

/**
 * Loads the native backend into @tensorflow/tfjs (registers 'tensorflow'; does not select it).
 * The result is cached: a process can hold only one TensorFlow binding.
 */
export function loadNativeBackend(): NativeLoadResult {
  if (cached) return cached;

  // TensorFlow reads this once, when libtensorflow loads. The wheels' libtensorflow is built with
  // oneDNN but leaves it off by default; on a CPU it makes training 1.4-1.7x faster (measured with
  // the TF 2.21 build on small CNNs; with it they train at PyTorch speed). The user's setting wins.
  process.env.TF_ENABLE_ONEDNN_OPTS ??= '1';
  // Hide TensorFlow's INFO lines (CPU feature notices) but keep its warnings and errors.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '1';

  const reasons: Array<{ candidate: string; reason: string }> = [];
  const info = readBuildInfo();
  const wheelDir = path.join(nativeDir(), 'tfjs-node');

  const stock = (source: 'tfjs-node-gpu' | 'tfjs-node') => ({
    candidate: `@tensorflow/${source}`,
    source,
    dir: () => resolvePackageDir(`@tensorflow/${source}`),
    missing: 'package not installed',
    describe: (l: Loaded) => `stock @tensorflow/${source} ${l.version} package`,
  });
  const wheel = {
    candidate: 'native/tfjs-node',
    source: 'wheel' as const,
    dir: () => (info && fs.existsSync(path.join(wheelDir, 'package.json')) ? wheelDir : undefined),
    missing: wheelNotBuiltReason(),
    describe: (l: Loaded) => `tfjs-node ${l.version} built from ${info?.wheel.file ?? 'a TensorFlow wheel'}`,
  };
  const candidates = info?.preferOverStock ? [wheel, stock('tfjs-node-gpu'), stock('tfjs-node')] : [stock('tfjs-node-gpu'), stock('tfjs-node'), wheel];

  for (const [i, c] of candidates.entries()) {
    const dir = c.dir();
    if (!dir) {
      reasons.push({ candidate: c.candidate, reason: c.missing });
      continue;
    }
    try {
      const loaded = loadPackageDir(dir);
      cached = { ok: true, name: 'tensorflow', source: c.source, detail: c.describe(loaded), tfVersion: loaded.tfVersion, reasons };
      return cached;
    } catch (e) {
      reasons.push({ candidate: c.candidate, reason: firstLine(e) });
      // A package that failed after its addon loaded may have registered kernels already;
      // trying another binding on top of it would only make a mess.
      if (/^package failed to load/.test(firstLine(e))) {
        for (const rest of candidates.slice(i + 1)) reasons.push({ candidate: rest.candidate, reason: `not tried: ${c.candidate} failed half-way` });
        break;
      }
    }
  }
  cached = { ok: false, reasons };
  return cached;
}
