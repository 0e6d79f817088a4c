#!/usr/bin/env node
/**
 * postinstall: give ssl the best native TensorFlow backend this machine can have, never failing.
 *
 *   1. the stock @tensorflow/tfjs-node-gpu / @tensorflow/tfjs-node install, when it loads and
 *      trains (and, on a machine with an NVIDIA GPU, when it actually sees that GPU);
 *   2. else the tfjs-node 4.22.0 binding compiled with node-gyp against the libtensorflow that
 *      ships inside a TensorFlow Python wheel (`tensorflow` where nvidia-smi exists, `tensorflow-cpu`
 *      otherwise), fetched with `pip download --no-deps` or given as SSL_TF_WHEEL=<file.whl>;
 *      the result goes to <repo>/native/ (git-ignored):
 *        native/tensorflow/     libtensorflow_cc.so.2, libtensorflow_framework.so.2, the headers
 *        native/tfjs-node/      the tfjs-node package, deps/ linking to ../tensorflow, built addon;
 *                               node_modules/ with its small runtime dependencies (google-protobuf,
 *                               progress, a stub for @mapbox/node-pre-gyp). @tensorflow/tfjs is NOT
 *                               there: it resolves to <repo>/node_modules, the app's own copy.
 *        native/BUILD_INFO.json written last: its presence means the build above is complete
 *        native/logs/           node-gyp logs
 *   3. else nothing native: ssl falls back to the wasm backend (src/backend/select.ts).
 *
 * Every outcome is recorded in native/INSTALL_RESULT.json (read by `ssl env`). Whatever fails,
 * this prints one warning line and exits 0. Plain CommonJS with no dependencies: it runs from the
 * root package's postinstall, before `tsc`, and only reads <repo>/node_modules.
 *
 * Environment:
 *   SSL_SKIP_NATIVE=1       do nothing (CI, or when wasm is enough)
 *   SSL_TF_WHEEL=<path>     use this TensorFlow wheel (clusters without network)
 *   SSL_TF_PACKAGE=<name>   `tensorflow` or `tensorflow-cpu` (default: by nvidia-smi)
 *   SSL_TF_VERSION=<spec>   pip version spec, default 2.21.* (the version verified with tfjs-node 4.22)
 *   SSL_NATIVE_REBUILD=1    ignore the existing build (also: `--rebuild`)
 *   SSL_WHEEL_CACHE=<dir>   where pip puts wheels (default ~/.cache/ssl/wheels)
 *   SSL_PYTHON=<exe>        Python used for `pip download` (default python3, then python)
 */
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { spawnSync } = require('child_process');
const { pipeline } = require('stream/promises');
const { Transform } = require('stream');

const TFJS_NODE_VERSION = '4.22.0';
const DEFAULT_TF_VERSION = '2.21.*';
const NAPI_BUILD_VERSION = 8; // tfjs-node 4.22.0 declares napi_versions 3..8
const BUILD_INFO_SCHEMA = 1;

const REPO = path.resolve(__dirname, '..');
const NATIVE = path.join(REPO, 'native');
const FINAL_TFJS_NODE = path.join(NATIVE, 'tfjs-node');
const FINAL_TF = path.join(NATIVE, 'tensorflow');
const BUILD_INFO = path.join(NATIVE, 'BUILD_INFO.json');
const INSTALL_RESULT = path.join(NATIVE, 'INSTALL_RESULT.json');
const LOGS = path.join(NATIVE, 'logs');
const LOCK = path.join(NATIVE, '.lock');

/** What we take from the wheel: the two libraries and the headers the binding includes. */
const WHEEL_LIBS = ['tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'];
const WHEEL_HEADER_PREFIXES = [
  'tensorflow/include/tensorflow/c/',
  'tensorflow/include/tensorflow/core/platform/',
  'tensorflow/include/tsl/platform/',
  'tensorflow/include/xla/tsl/c/',
];
const WHEEL_EXTRA = ['tensorflow/include/LICENSE'];

const t0 = Date.now();
const quiet = process.argv.includes('--quiet');
const force = process.argv.includes('--rebuild') || process.env.SSL_NATIVE_REBUILD === '1';

class Failure extends Error {
  /** @param {string} what one line: what failed @param {string} [log] file with the details */
  constructor(what, log) {
    super(what);
    this.log = log;
  }
}

function say(msg) {
  if (!quiet) console.log(`ssl native: ${msg}`);
}
function warn(msg) {
  console.warn(`ssl native: WARNING: ${msg}`);
}
function secs() {
  return `${((Date.now() - t0) / 1000).toFixed(1)} s`;
}
function firstLine(s) {
  return String(s || '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)[0] || '(no message)';
}
function exists(p) {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
function readJson(p) {
  try {
    return JSON.parse(fs.readFileSync(p, 'utf8'));
  } catch {
    return undefined;
  }
}
function writeJsonAtomic(p, value) {
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  fs.renameSync(tmp, p);
}
function rmrf(p) {
  fs.rmSync(p, { recursive: true, force: true });
}
function recordResult(outcome, detail, extra) {
  try {
    fs.mkdirSync(NATIVE, { recursive: true });
    writeJsonAtomic(INSTALL_RESULT, { outcome, detail, at: new Date().toISOString(), seconds: (Date.now() - t0) / 1000, ...extra });
  } catch {
    /* recording is best effort */
  }
}
function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  return { status: r.status, signal: r.signal, error: r.error, stdout: r.stdout || '', stderr: r.stderr || '' };
}
function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------
// The probe: load a tfjs-node package in a child process and train one conv2d gradient step.

/**
 * Child-process source. argv[1]: the tfjs-node package directory (or package name); argv[2]: the
 * repository root. Prints one JSON line. The child keeps our process free of a binding that
 * might crash, and of a second 'tensorflow' backend registration.
 */
const PROBE = String.raw`
const path = require('path');
const [pkg, repo] = process.argv.slice(1);
const out = (o) => { process.stdout.write('\n@@PROBE ' + JSON.stringify(o) + '\n'); };
(async () => {
  const pkgPath = require.resolve(pkg, { paths: [repo] });
  const ourTfjs = require.resolve('@tensorflow/tfjs', { paths: [repo] });
  const theirTfjs = require.resolve('@tensorflow/tfjs', { paths: [path.dirname(pkgPath)] });
  if (ourTfjs !== theirTfjs) return out({ ok: false, reason: 'it resolves @tensorflow/tfjs to ' + theirTfjs + ', not ' + ourTfjs });
  const ourCore = require.resolve('@tensorflow/tfjs-core', { paths: [path.dirname(ourTfjs)] });
  const theirCore = require.resolve('@tensorflow/tfjs-core', { paths: [path.dirname(pkgPath)] });
  if (ourCore !== theirCore) return out({ ok: false, reason: 'it resolves @tensorflow/tfjs-core to ' + theirCore + ', not ' + ourCore });
  require(pkgPath);
  const tf = require(ourTfjs);
  if (!(await tf.setBackend('tensorflow'))) return out({ ok: false, reason: "backend 'tensorflow' did not initialise" });
  const be = tf.backend();
  // conv2d forward + both gradients, compared with the pure-JS cpu backend
  const rnd = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);
  const run = () => tf.tidy(() => {
    const x = tf.tensor4d(rnd(2 * 9 * 9 * 3, 1), [2, 9, 9, 3]);
    const w = tf.tensor4d(rnd(3 * 3 * 3 * 4, 2), [3, 3, 3, 4]);
    const [dx, dw] = tf.grads((a, b) => tf.conv2d(a, b, 1, 'same').relu().square().sum())([x, w]);
    return [dx.dataSync(), dw.dataSync()];
  });
  const native = run();
  await tf.setBackend('cpu');
  const ref = run();
  // relative to the largest value: GPUs run convolutions in TF32 (about 1e-3 relative error)
  let maxDiff = 0, scale = 1;
  for (let k = 0; k < 2; k++) for (let i = 0; i < ref[k].length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(ref[k][i] - native[k][i]));
    scale = Math.max(scale, Math.abs(ref[k][i]));
  }
  const ok = maxDiff / scale < 1e-2;
  out({ ok, reason: ok ? '' : 'conv2d gradient differs from the cpu backend by ' + maxDiff + ' (values up to ' + scale + ')',
        tfVersion: be.binding && be.binding.TF_Version, gpu: !!be.isUsingGpuDevice, maxDiff, relDiff: maxDiff / scale, tfjs: ourTfjs });
})().catch((e) => out({ ok: false, reason: String(e && e.message || e).split('\n')[0] }));
`;

function probe(pkg, label) {
  const env = { ...process.env, TF_ENABLE_ONEDNN_OPTS: process.env.TF_ENABLE_ONEDNN_OPTS || '1', TF_CPP_MIN_LOG_LEVEL: process.env.TF_CPP_MIN_LOG_LEVEL || '2' };
  const r = run(process.execPath, ['-e', PROBE, pkg, REPO], { cwd: REPO, env, timeout: 180000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('@@PROBE '));
  if (line) {
    const p = JSON.parse(line.slice(8));
    p.reason = String(p.reason || '').trim();
    return p;
  }
  const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : firstLine(r.stderr.split('\n').filter((l) => /error/i.test(l)).join('\n') || r.stderr);
  return { ok: false, reason: `${label} crashed while loading: ${why}` };
}

function hasNvidiaGpu() {
  const r = run('nvidia-smi', ['-L'], { timeout: 20000 });
  return r.status === 0 && /GPU/.test(r.stdout);
}

// ---------------------------------------------------------------------------------------------
// Step 1: the stock packages.

/** A stock package that works but was passed over (no GPU on a GPU machine): the app still loads it. */
let stockFallback;

/** @returns {{ accepted: boolean, notes: string[] }} */
function checkStock(gpuMachine) {
  const notes = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    let pkgJson;
    try {
      pkgJson = require.resolve(`${pkg}/package.json`, { paths: [REPO] });
    } catch {
      continue; // not installed (npm removes an optional dependency whose install script failed)
    }
    const p = probe(pkg, pkg);
    if (!p.ok) {
      notes.push(`${pkg} is installed but unusable: ${p.reason}`);
      continue;
    }
    if (gpuMachine && !p.gpu) {
      notes.push(`${pkg} loads (TensorFlow ${p.tfVersion}) but sees no GPU (it needs CUDA 11.2 + cuDNN 8.1)`);
      stockFallback = stockFallback || pkg;
      continue;
    }
    say(`stock ${pkg} works (TensorFlow ${p.tfVersion}${p.gpu ? ', GPU' : ''}); nothing to build`);
    recordResult('stock', `${pkg} ${JSON.parse(fs.readFileSync(pkgJson, 'utf8')).version} (TensorFlow ${p.tfVersion}${p.gpu ? ', GPU' : ''})`, { package: pkg });
    return { accepted: true, notes };
  }
  for (const n of notes) say(n);
  return { accepted: false, notes };
}

// ---------------------------------------------------------------------------------------------
// Step 2a: which wheel, and is the existing build already it?

function wantedWheel(gpuMachine) {
  const given = process.env.SSL_TF_WHEEL;
  if (given) {
    const abs = path.resolve(given);
    let st;
    try {
      st = fs.statSync(abs);
    } catch {
      throw new Failure(`SSL_TF_WHEEL=${given}: no such file`);
    }
    if (!/\.whl$/.test(abs)) throw new Failure(`SSL_TF_WHEEL=${given} is not a .whl file`);
    return { kind: 'file', path: abs, size: st.size, mtimeMs: Math.round(st.mtimeMs), explicit: true };
  }
  const pkgName = process.env.SSL_TF_PACKAGE || (gpuMachine ? 'tensorflow' : 'tensorflow-cpu');
  if (!/^(tensorflow|tensorflow-cpu|tensorflow_cpu)$/.test(pkgName)) throw new Failure(`SSL_TF_PACKAGE=${pkgName}: expected tensorflow or tensorflow-cpu`);
  const version = process.env.SSL_TF_VERSION || DEFAULT_TF_VERSION;
  const requirement = /^[<>=!~]/.test(version) ? `${pkgName}${version}` : `${pkgName}==${version}`;
  return { kind: 'pip', requirement, explicit: Boolean(process.env.SSL_TF_PACKAGE || process.env.SSL_TF_VERSION) };
}

function buildKey(wheel) {
  return {
    tfjsNode: TFJS_NODE_VERSION,
    napi: NAPI_BUILD_VERSION,
    platform: `${process.platform}-${process.arch}`,
    wheel: wheel.kind === 'file' ? { file: wheel.path, size: wheel.size, mtimeMs: wheel.mtimeMs } : { requirement: wheel.requirement },
  };
}

function existingBuildUsable(wheel, gpuMachine) {
  const info = readJson(BUILD_INFO);
  if (!info || info.schema !== BUILD_INFO_SCHEMA || !info.key) return undefined;
  const want = buildKey(wheel);
  const sameBase = info.key.tfjsNode === want.tfjsNode && info.key.napi === want.napi && info.key.platform === want.platform;
  if (!sameBase) return undefined;
  // Without an explicit wheel/package/version, any complete build is the one we want: a machine
  // set up once with SSL_TF_WHEEL keeps its build when `npm ci` runs again without it.
  // (Unless it was made for the other kind of machine: a CPU build copied to a GPU box, say.)
  if (wheel.explicit && JSON.stringify(info.key.wheel) !== JSON.stringify(want.wheel)) return undefined;
  if (!wheel.explicit && wheel.kind === 'pip' && Boolean(info.gpuMachine) !== gpuMachine) return undefined;
  const files = [
    path.join(FINAL_TFJS_NODE, 'package.json'),
    path.join(FINAL_TFJS_NODE, `lib/napi-v${NAPI_BUILD_VERSION}/tfjs_binding.node`),
    ...WHEEL_LIBS.map((m) => path.join(FINAL_TF, path.basename(m))),
  ];
  if (!files.every((f) => fs.existsSync(f))) return undefined;
  return info;
}

// ---------------------------------------------------------------------------------------------
// Step 2b: get the tfjs-node package and the wheel.

function npmCommand() {
  // Inside an npm lifecycle script npm_execpath is npm's own CLI: use the same npm.
  const execpath = process.env.npm_execpath;
  if (execpath && /npm-cli\.js$/.test(execpath) && fs.existsSync(execpath)) return [process.execPath, [execpath]];
  return ['npm', []];
}

/**
 * Runtime dependencies of tfjs-node 4.22.0 other than @tensorflow/tfjs (which must be the app's
 * own copy, found by walking up to <repo>/node_modules) and @mapbox/node-pre-gyp (shimmed, see
 * writePreGypShim): dist/proto/api_pb.js needs google-protobuf, dist/callbacks.js needs progress.
 * Both have no dependencies of their own; they go into native/tfjs-node/node_modules so that the
 * app's package.json needs nothing for them. Versions as tfjs-node's ranges resolve in our lock.
 */
const VENDORED = [
  { name: 'google-protobuf', version: '3.21.4' },
  { name: 'progress', version: '2.0.3' },
];

/** The lock's integrity for a package at a version, when the lock has that entry. */
function lockIntegrity(name, version) {
  const lock = readJson(path.join(REPO, 'package-lock.json'));
  const entry = lock && lock.packages && lock.packages[`node_modules/${name}`];
  return entry && entry.version === version ? entry.integrity : undefined;
}

/** npm pack the tfjs-node package and the vendored dependencies; extract into staging/tfjs-node. */
function fetchTfjsNode(staging) {
  const specs = [{ name: '@tensorflow/tfjs-node', version: TFJS_NODE_VERSION }, ...VENDORED];
  const [npm, pre] = npmCommand();
  const r = run(npm, [...pre, 'pack', ...specs.map((p) => `${p.name}@${p.version}`), '--pack-destination', staging, '--json', '--prefer-offline', '--ignore-scripts'], {
    cwd: staging,
    timeout: 300000,
  });
  if (r.status !== 0) throw new Failure(`npm pack @tensorflow/tfjs-node@${TFJS_NODE_VERSION} failed: ${firstLine(r.stderr.split('\n').filter((l) => /ERR|error/.test(l)).join('\n') || r.stderr || (r.error && r.error.message))}`);
  let metas;
  try {
    metas = JSON.parse(r.stdout);
  } catch {
    throw new Failure(`npm pack printed no JSON: ${firstLine(r.stdout)}`);
  }
  const integrity = {};
  for (const spec of specs) {
    const meta = metas.find((m) => m.name === spec.name && m.version === spec.version);
    if (!meta) throw new Failure(`npm pack did not produce ${spec.name}@${spec.version}`);
    const want = lockIntegrity(spec.name, spec.version);
    if (want && meta.integrity !== want) throw new Failure(`${spec.name}@${spec.version}: tarball integrity ${meta.integrity} differs from package-lock.json's ${want}`);
    integrity[spec.name] = meta.integrity;
    const tgz = path.join(staging, meta.filename);
    const into = fs.mkdtempSync(path.join(staging, 'x-'));
    const t = run('tar', ['-xzf', tgz, '-C', into]);
    if (t.status !== 0) throw new Failure(`could not extract ${meta.filename}: ${firstLine(t.stderr || (t.error && t.error.message))}`);
    const dest = spec.name === '@tensorflow/tfjs-node' ? path.join(staging, 'tfjs-node') : path.join(staging, 'tfjs-node', 'node_modules', spec.name);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.renameSync(path.join(into, 'package'), dest);
    rmrf(into);
    rmrf(tgz);
  }
  return integrity;
}

function pythonCommand() {
  const candidates = process.env.SSL_PYTHON ? [process.env.SSL_PYTHON] : ['python3', 'python'];
  for (const py of candidates) {
    const r = run(py, ['-m', 'pip', '--version'], { timeout: 60000 });
    if (r.status === 0) return py;
  }
  return undefined;
}

function wheelCacheDir() {
  const base = process.env.SSL_WHEEL_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'ssl', 'wheels');
  fs.mkdirSync(base, { recursive: true });
  return base;
}

function pipDownload(requirement) {
  const py = pythonCommand();
  if (!py) throw new Failure(`no python3 with pip to download ${requirement}; give a wheel with SSL_TF_WHEEL=<file.whl>`);
  const dir = wheelCacheDir();
  const base = ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--disable-pip-version-check', '--retries', '2', '-d', dir, requirement];
  // The libraries inside do not depend on Python; if this Python has no matching wheel (too old
  // or too new), ask for the cp311 build, which TF 2.21 has.
  const attempts = [base, [...base.slice(0, 3), '--python-version', '3.11', ...base.slice(3)]];
  let last;
  for (const args of attempts) {
    if (last && !/No matching distribution|Could not find a version/i.test(last.stderr)) break;
    say(`pip download ${requirement} (${py}${args.includes('--python-version') ? ', cp311 wheel' : ''}) ...`);
    last = run(py, args, { timeout: 1800000 });
    if (last.status === 0) {
      const m = /(?:Saved|File was already downloaded) (.+\.whl)\s*$/m.exec(last.stdout);
      if (m && fs.existsSync(m[1].trim())) return m[1].trim();
      const stem = requirement.split(/[<>=!~]/)[0].replace(/-/g, '_');
      const found = fs.readdirSync(dir).filter((f) => f.startsWith(`${stem}-`) && f.endsWith('.whl')).map((f) => path.join(dir, f));
      found.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs);
      if (found.length) return found[0];
      throw new Failure(`pip download ${requirement} succeeded but left no wheel in ${dir}`);
    }
  }
  const err = (last.stderr + '\n' + last.stdout).split('\n').filter((l) => /^ERROR/.test(l)).join('\n');
  throw new Failure(`pip download ${requirement} failed: ${firstLine(err || last.stderr || (last.error && last.error.message))}; give a wheel with SSL_TF_WHEEL=<file.whl>`);
}

// ---------------------------------------------------------------------------------------------
// Step 2c: a small zip reader (wheels are zip files): no unzip or Python needed, streams the
// 750 MiB library instead of holding it in memory, and checks sizes and CRC-32.

function readZipEntries(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const tailLen = Math.min(size, 65557);
    const tail = Buffer.alloc(tailLen);
    fs.readSync(fd, tail, 0, tailLen, size - tailLen);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tail.readUInt32LE(i) === 0x06054b50) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw new Failure(`${path.basename(file)} is not a zip file (no end-of-central-directory record)`);
    let count = tail.readUInt16LE(eocd + 10);
    let cdSize = tail.readUInt32LE(eocd + 12);
    let cdOffset = tail.readUInt32LE(eocd + 16);
    if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === 0x07064b50) {
      const z = Buffer.alloc(56);
      fs.readSync(fd, z, 0, 56, Number(tail.readBigUInt64LE(eocd - 20 + 8)));
      if (z.readUInt32LE(0) === 0x06064b50) {
        count = Number(z.readBigUInt64LE(32));
        cdSize = Number(z.readBigUInt64LE(40));
        cdOffset = Number(z.readBigUInt64LE(48));
      }
    }
    const cd = Buffer.alloc(cdSize);
    fs.readSync(fd, cd, 0, cdSize, cdOffset);
    const entries = new Map();
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (cd.readUInt32LE(p) !== 0x02014b50) throw new Failure(`${path.basename(file)}: corrupt zip central directory`);
      const e = {
        method: cd.readUInt16LE(p + 10),
        crc: cd.readUInt32LE(p + 16),
        csize: cd.readUInt32LE(p + 20),
        usize: cd.readUInt32LE(p + 24),
        offset: cd.readUInt32LE(p + 42),
      };
      const nameLen = cd.readUInt16LE(p + 28);
      const extraLen = cd.readUInt16LE(p + 30);
      const commentLen = cd.readUInt16LE(p + 32);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLen);
      // zip64 extra field: the 64-bit values present are those whose 32-bit field is 0xffffffff
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = cd.readUInt16LE(x);
        const len = cd.readUInt16LE(x + 2);
        if (id === 0x0001) {
          let q = x + 4;
          if (e.usize === 0xffffffff) (e.usize = Number(cd.readBigUInt64LE(q))), (q += 8);
          if (e.csize === 0xffffffff) (e.csize = Number(cd.readBigUInt64LE(q))), (q += 8);
          if (e.offset === 0xffffffff) e.offset = Number(cd.readBigUInt64LE(q));
        }
        x += 4 + len;
      }
      entries.set(name, e);
      p += 46 + nameLen + extraLen + commentLen;
    }
    return entries;
  } finally {
    fs.closeSync(fd);
  }
}

async function extractEntry(file, e, dest) {
  const fd = fs.openSync(file, 'r');
  const h = Buffer.alloc(30);
  fs.readSync(fd, h, 0, 30, e.offset);
  fs.closeSync(fd);
  if (h.readUInt32LE(0) !== 0x04034b50) throw new Failure(`${path.basename(file)}: corrupt local header for ${path.basename(dest)}`);
  const start = e.offset + 30 + h.readUInt16LE(26) + h.readUInt16LE(28);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  if (e.csize === 0 && e.usize === 0) {
    fs.writeFileSync(dest, '');
    return;
  }
  if (e.method !== 0 && e.method !== 8) throw new Failure(`${path.basename(file)}: unsupported zip compression method ${e.method}`);
  let crc = 0;
  let n = 0;
  const hasCrc = typeof zlib.crc32 === 'function'; // Node >= 20.15
  const check = new Transform({
    transform(chunk, _enc, cb) {
      if (hasCrc) crc = zlib.crc32(chunk, crc);
      n += chunk.length;
      cb(null, chunk);
    },
  });
  const src = fs.createReadStream(file, { start, end: start + e.csize - 1, highWaterMark: 1 << 20 });
  const stages = e.method === 8 ? [src, zlib.createInflateRaw(), check] : [src, check];
  await pipeline(...stages, fs.createWriteStream(dest));
  if (n !== e.usize) throw new Failure(`${path.basename(file)}: ${path.basename(dest)} extracted to ${n} bytes, expected ${e.usize}`);
  if (hasCrc && crc >>> 0 !== e.crc >>> 0) throw new Failure(`${path.basename(file)}: CRC mismatch in ${path.basename(dest)} (corrupt wheel?)`);
}

async function extractWheel(wheelPath, tfDir) {
  const entries = readZipEntries(wheelPath);
  const meta = [...entries.keys()].find((k) => /^[^/]+\.dist-info\/METADATA$/.test(k));
  let dist = {};
  if (meta) {
    const tmp = path.join(tfDir, 'METADATA');
    await extractEntry(wheelPath, entries.get(meta), tmp);
    const text = fs.readFileSync(tmp, 'utf8');
    dist = { name: (/^Name: (.+)$/m.exec(text) || [])[1], version: (/^Version: (.+)$/m.exec(text) || [])[1] };
    rmrf(tmp);
  }
  for (const lib of WHEEL_LIBS) {
    if (!entries.has(lib)) throw new Failure(`${path.basename(wheelPath)} has no ${lib}: not a TensorFlow 2.x Linux wheel?`);
  }
  const wanted = [...entries.keys()].filter(
    (k) => !k.endsWith('/') && !k.includes('..') && (WHEEL_LIBS.includes(k) || WHEEL_EXTRA.includes(k) || WHEEL_HEADER_PREFIXES.some((pre) => k.startsWith(pre))),
  );
  for (const name of wanted) {
    const dest = path.join(tfDir, name.slice('tensorflow/'.length));
    await extractEntry(wheelPath, entries.get(name), dest);
    if (WHEEL_LIBS.includes(name)) fs.chmodSync(dest, 0o755);
  }
  return { ...dist, files: wanted.length };
}

// ---------------------------------------------------------------------------------------------
// Step 2d: wire deps/, compile, shim.

function linkDeps(pkgDir) {
  // Relative links, resolved identically in the staging directory and after the rename.
  const deps = path.join(pkgDir, 'deps');
  rmrf(deps);
  fs.mkdirSync(path.join(deps, 'lib'), { recursive: true });
  fs.symlinkSync(path.join('..', '..', 'tensorflow', 'include'), path.join(deps, 'include'));
  const lib = (name) => path.join('..', '..', '..', 'tensorflow', name);
  // -ltensorflow / -ltensorflow_framework at link time; the SONAMEs (recorded as NEEDED in the
  // addon) at run time, found through the addon's rpath $ORIGIN/../../deps/lib.
  fs.symlinkSync(lib('libtensorflow_cc.so.2'), path.join(deps, 'lib', 'libtensorflow.so'));
  fs.symlinkSync(lib('libtensorflow_framework.so.2'), path.join(deps, 'lib', 'libtensorflow_framework.so'));
  fs.symlinkSync(lib('libtensorflow_cc.so.2'), path.join(deps, 'lib', 'libtensorflow_cc.so.2'));
  fs.symlinkSync(lib('libtensorflow_framework.so.2'), path.join(deps, 'lib', 'libtensorflow_framework.so.2'));
}

/**
 * tfjs-node's index.js asks @mapbox/node-pre-gyp only where the addon is. This local stub
 * answers that, so the app needs no node-pre-gyp (and its deprecated dependency tree); Node
 * finds it in native/tfjs-node/node_modules before walking up to <repo>/node_modules.
 */
function writePreGypShim(pkgDir) {
  const dir = path.join(pkgDir, 'node_modules', '@mapbox', 'node-pre-gyp');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: '@mapbox/node-pre-gyp', version: '0.0.0-ssl-shim', main: 'index.js', private: true }, null, 2) + '\n');
  fs.writeFileSync(
    path.join(dir, 'index.js'),
    `'use strict';
// Written by ssl's scripts/install-native.js: the one node-pre-gyp call tfjs-node makes at run time.
const path = require('path');
exports.find = (packageJsonPath) => path.join(path.dirname(packageJsonPath), 'lib', 'napi-v${NAPI_BUILD_VERSION}', 'tfjs_binding.node');
`,
  );
}

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  candidates.push(path.join(prefix, 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  const execpath = process.env.npm_execpath;
  if (execpath) candidates.push(path.resolve(path.dirname(execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  for (const c of candidates) if (c && fs.existsSync(c)) return [process.execPath, [c]];
  const r = run('node-gyp', ['--version']);
  if (r.status === 0) return ['node-gyp', []];
  return undefined;
}

function nodeDir() {
  if (process.env.npm_config_nodedir && fs.existsSync(path.join(process.env.npm_config_nodedir, 'include', 'node', 'node_api.h'))) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  return undefined; // node-gyp will try to download the headers
}

function compile(pkgDir, logFile) {
  const gyp = findNodeGyp();
  if (!gyp) throw new Failure('node-gyp not found (it ships with npm); cannot compile the binding');
  const nd = nodeDir();
  const args = [
    ...gyp[1],
    'rebuild',
    ...(nd ? [`--nodedir=${nd}`] : []),
    `--napi_build_version=${NAPI_BUILD_VERSION}`,
    '--module_name=tfjs_binding',
    `--module_path=${path.join(pkgDir, 'lib', `napi-v${NAPI_BUILD_VERSION}`)}`,
    '--jobs=max',
  ];
  const r = run(gyp[0], args, { cwd: pkgDir, timeout: 900000 });
  fs.writeFileSync(logFile, `$ ${gyp[0]} ${args.join(' ')}\n(cwd ${pkgDir})\n\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n--- exit ${r.status}${r.signal ? ` signal ${r.signal}` : ''}\n`);
  if (r.status !== 0) {
    const lines = r.stderr.split('\n');
    const err =
      lines.find((l) => /\berror\b:/i.test(l)) || // a compiler or linker error
      lines.find((l) => /^gyp ERR! /.test(l) && !/gyp ERR! (cwd|node -v|node-gyp -v|not ok|System|command|stack\s+at)/.test(l));
    const why = r.signal ? `killed by ${r.signal}` : r.error ? r.error.message : firstLine(err || lines.filter((l) => l.trim()).slice(-1)[0]);
    throw new Failure(`node-gyp failed: ${why}`, logFile);
  }
  const addon = path.join(pkgDir, 'lib', `napi-v${NAPI_BUILD_VERSION}`, 'tfjs_binding.node');
  if (!fs.existsSync(addon)) throw new Failure(`node-gyp succeeded but ${path.relative(pkgDir, addon)} is missing`, logFile);
  return { nodedir: nd || null, stdioGuard: compileStdioGuard(gyp, nd, pkgDir, logFile) };
}

/**
 * A 30-line addon that points fd 2 at a file and back. libtensorflow 2.21 logs through absl, and
 * with oneDNN on it prints an INFO line (plus absl's "before InitializeLog" preamble) while the
 * binding loads, whatever TF_CPP_MIN_LOG_LEVEL says; src/backend/native.ts uses this to drop
 * those INFO lines and pass warnings and errors through. Optional: failure only costs the noise.
 */
const STDIO_GUARD_C = `#include <node_api.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

/* redirectStderr(path): fd 2 -> path (truncated); returns the saved fd for restoreStderr. */
static napi_value Redirect(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[4096];
  size_t len = 0;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "redirectStderr(path): path expected");
    return NULL;
  }
  fflush(stderr);
  int saved = fcntl(2, F_DUPFD_CLOEXEC, 3);
  if (saved < 0) {
    napi_throw_error(env, NULL, "redirectStderr: dup failed");
    return NULL;
  }
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || dup2(fd, 2) < 0) {
    if (fd >= 0) close(fd);
    close(saved);
    napi_throw_error(env, NULL, "redirectStderr: cannot open the capture file");
    return NULL;
  }
  close(fd);
  napi_value r;
  napi_create_int32(env, saved, &r);
  return r;
}

/* restoreStderr(saved): fd 2 back to what it was. */
static napi_value Restore(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t saved = -1;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_int32(env, argv[0], &saved) != napi_ok || saved < 0) {
    napi_throw_type_error(env, NULL, "restoreStderr(fd): fd expected");
    return NULL;
  }
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "redirectStderr", NAPI_AUTO_LENGTH, Redirect, NULL, &fn);
  napi_set_named_property(env, exports, "redirectStderr", fn);
  napi_create_function(env, "restoreStderr", NAPI_AUTO_LENGTH, Restore, NULL, &fn);
  napi_set_named_property(env, exports, "restoreStderr", fn);
  return exports;
}
`;

function compileStdioGuard(gyp, nd, pkgDir, logFile) {
  const dir = path.join(pkgDir, 'ssl-stdio-guard');
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'stdio_guard.c'), STDIO_GUARD_C);
    fs.writeFileSync(path.join(dir, 'binding.gyp'), JSON.stringify({ targets: [{ target_name: 'stdio_guard', sources: ['stdio_guard.c'], defines: [`NAPI_VERSION=${NAPI_BUILD_VERSION}`] }] }, null, 2) + '\n');
    const args = [...gyp[1], 'rebuild', ...(nd ? [`--nodedir=${nd}`] : [])];
    const r = run(gyp[0], args, { cwd: dir, timeout: 300000 });
    fs.appendFileSync(logFile, `\n\n$ ${gyp[0]} ${args.join(' ')}\n(cwd ${dir})\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n--- exit ${r.status}\n`);
    const built = path.join(dir, 'build', 'Release', 'stdio_guard.node');
    if (r.status !== 0 || !fs.existsSync(built)) throw new Error(`node-gyp exit ${r.status}`);
    fs.copyFileSync(built, path.join(dir, 'stdio_guard.node'));
    rmrf(path.join(dir, 'build'));
    return true;
  } catch (e) {
    say(`note: the optional stderr filter did not build (${firstLine(e.message)}); TensorFlow's load-time INFO lines will show`);
    rmrf(dir);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Step 2e: swap the staged build into place.

function commit(staging, info) {
  const old = path.join(NATIVE, `.old-${process.pid}`);
  fs.mkdirSync(old, { recursive: true });
  // BUILD_INFO.json goes first and comes back last: without it nothing here counts as built.
  rmrf(BUILD_INFO);
  if (exists(FINAL_TFJS_NODE)) fs.renameSync(FINAL_TFJS_NODE, path.join(old, 'tfjs-node'));
  if (exists(FINAL_TF)) fs.renameSync(FINAL_TF, path.join(old, 'tensorflow'));
  fs.renameSync(path.join(staging, 'tfjs-node'), FINAL_TFJS_NODE);
  fs.renameSync(path.join(staging, 'tensorflow'), FINAL_TF);
  writeJsonAtomic(BUILD_INFO, info);
  rmrf(old);
}

function cleanStale() {
  if (!exists(NATIVE)) return;
  for (const name of fs.readdirSync(NATIVE)) {
    const m = /^\.(staging|old)-(\d+)/.exec(name);
    if (m && (Number(m[2]) === process.pid || !pidAlive(Number(m[2])))) rmrf(path.join(NATIVE, name));
  }
  if (exists(LOGS)) {
    const logs = fs.readdirSync(LOGS).filter((f) => f.endsWith('.log')).sort();
    for (const f of logs.slice(0, Math.max(0, logs.length - 5))) rmrf(path.join(LOGS, f));
  }
}

function takeLock() {
  fs.mkdirSync(NATIVE, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(LOCK, String(process.pid), { flag: 'wx' });
      return true;
    } catch {
      const holder = Number(fs.readFileSync(LOCK, 'utf8'));
      if (holder && holder !== process.pid && pidAlive(holder)) return false;
      rmrf(LOCK);
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------

async function buildFromWheel(wheel, gpuMachine) {
  const staging = fs.mkdtempSync(path.join(NATIVE, `.staging-${process.pid}-`));
  // Interrupted (Ctrl-C reaches the compiler too, so this runs as soon as it stops): leave nothing.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      rmrf(staging);
      rmrf(LOCK);
      warn(`interrupted (${sig}); nothing was changed in native/`);
      process.exit(130);
    });
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  fs.mkdirSync(LOGS, { recursive: true });
  const logFile = path.join(LOGS, `node-gyp-${stamp}.log`);
  try {
    const wheelPath = wheel.kind === 'file' ? wheel.path : pipDownload(wheel.requirement);
    say(`fetching @tensorflow/tfjs-node@${TFJS_NODE_VERSION}, ${VENDORED.map((p) => `${p.name}@${p.version}`).join(', ')} (npm pack) ... (${secs()})`);
    const integrity = fetchTfjsNode(staging);
    const tfDir = path.join(staging, 'tensorflow');
    say(`extracting libtensorflow from ${path.basename(wheelPath)} ... (${secs()})`);
    const dist = await extractWheel(wheelPath, tfDir);
    const pkgDir = path.join(staging, 'tfjs-node');
    linkDeps(pkgDir);
    writePreGypShim(pkgDir);
    say(`compiling the binding with node-gyp (log: ${path.relative(REPO, logFile)}) ... (${secs()})`);
    const { nodedir, stdioGuard } = compile(pkgDir, logFile);
    say(`checking that it loads and trains ... (${secs()})`);
    const p = probe(pkgDir, 'the new binding');
    if (!p.ok) throw new Failure(`the built binding does not work: ${p.reason}`, logFile);
    const wheelStat = fs.statSync(wheelPath);
    const info = {
      schema: BUILD_INFO_SCHEMA,
      source: 'wheel',
      key: buildKey(wheel.kind === 'file' ? wheel : { ...wheel, path: wheelPath }),
      wheel: { file: path.basename(wheelPath), path: wheelPath, size: wheelStat.size, given: wheel.kind === 'file' ? 'SSL_TF_WHEEL' : `pip download ${wheel.requirement}`, distribution: dist.name, version: dist.version },
      tfVersion: p.tfVersion,
      gpu: p.gpu,
      gpuMachine,
      tfjsNode: { version: TFJS_NODE_VERSION, integrity: integrity['@tensorflow/tfjs-node'] },
      vendored: Object.fromEntries(VENDORED.map((p) => [p.name, { version: p.version, integrity: integrity[p.name] }])),
      // Stock packages that were installed but rejected (e.g. tfjs-node-gpu without a usable GPU):
      // the app should prefer this build over them.
      preferOverStock: Boolean(gpuMachine && p.gpu),
      node: process.version,
      nodedir,
      stdioGuard,
      napi: NAPI_BUILD_VERSION,
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((Date.now() - t0) / 100) / 10,
      log: path.relative(REPO, logFile),
      probe: { maxDiff: p.maxDiff, relDiff: p.relDiff },
    };
    commit(staging, info);
    return info;
  } finally {
    rmrf(staging);
  }
}

async function main() {
  if (process.env.SSL_SKIP_NATIVE === '1') {
    say('SSL_SKIP_NATIVE=1: skipping the native backend');
    recordResult('skipped', 'SSL_SKIP_NATIVE=1 at install');
    return;
  }
  const gpuMachine = hasNvidiaGpu();
  if (!force) {
    const stock = checkStock(gpuMachine);
    if (stock.accepted) return;
  }
  if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) {
    throw new Failure(`building from a TensorFlow wheel is supported on Linux x64/arm64 only, not ${process.platform}-${process.arch}`);
  }
  const wheel = wantedWheel(gpuMachine);
  if (!takeLock()) {
    say('another install-native is running; leaving the build to it');
    return;
  }
  try {
    cleanStale();
    const existing = force ? undefined : existingBuildUsable(wheel, gpuMachine);
    if (existing) {
      const p = probe(FINAL_TFJS_NODE, 'the existing build');
      if (p.ok) {
        say(`already built from ${existing.wheel.file} (TensorFlow ${p.tfVersion}${p.gpu ? ', GPU' : ''}); ${secs()} (SSL_NATIVE_REBUILD=1 rebuilds)`);
        recordResult('cached', `tfjs-node ${TFJS_NODE_VERSION} built from ${existing.wheel.file}`, { wheel: existing.wheel.file });
        return;
      }
      say(`the existing build no longer works (${p.reason}); rebuilding`);
    }
    const info = await buildFromWheel(wheel, gpuMachine);
    say(`built tfjs-node ${TFJS_NODE_VERSION} against TensorFlow ${info.tfVersion} from ${info.wheel.file} in ${secs()}`);
    if (gpuMachine && !info.gpu) {
      warn('this machine has an NVIDIA GPU but TensorFlow sees none: put the CUDA 12 / cuDNN 9 libraries on LD_LIBRARY_PATH (README, "Native backend")');
    }
    recordResult('built', `tfjs-node ${TFJS_NODE_VERSION} built from ${info.wheel.file}`, { wheel: info.wheel.file, log: info.log });
  } finally {
    rmrf(LOCK);
  }
}

main().then(
  () => {
    process.exitCode = 0;
  },
  (e) => {
    const what = e instanceof Failure ? e.message : `unexpected error: ${e && e.stack ? e.stack : e}`;
    const then = fs.existsSync(BUILD_INFO)
      ? 'ssl keeps using the previous build in native/'
      : stockFallback
        ? `ssl will use the stock ${stockFallback} (CPU only)`
        : 'ssl will fall back to the wasm backend';
    warn(`${what}${e && e.log ? ` [log: ${path.relative(REPO, e.log)}]` : ''}. ${then}.`);
    recordResult('failed', what, e && e.log ? { log: path.relative(REPO, e.log) } : {});
    process.exitCode = 0;
  },
);
