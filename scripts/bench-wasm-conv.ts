/**
 * Forward and training throughput of convolutional nets on the tfjs wasm backend.
 *
 *   npx tsc -p . && node dist/scripts/bench-wasm-conv.js [--model cnn|wrn|all] [--repeat 4]
 *       [--variants naive,fast,fast+bn] [--steps 5] [--profile] [--verbose]
 *
 * --profile prints the kernels of one training step by time; --verbose prints every step's loss.
 * Variants run one after another on the same weights (a fresh Adam each); the forward pass is the
 * same for all:
 *   naive    the first polyfill: filter gradient as one transposed matmul per filter tap over
 *            shifted slices; every other kernel stock (Conv2DBackpropInput, MaxPoolGrad, which
 *            gives wrong gradients for all-negative windows, Sum, Mean, Identity, Tile); batch
 *            norm as moments + batchNorm4d
 *   fast     installWasmTrainingKernels(), batch norm as moments + batchNorm4d
 *   fast+bn  installWasmTrainingKernels() and batchNormTraining (WRN only: the CNN has no BN)
 *
 * Models: (a) the small MNIST CNN of Temporal Ensembling (28x28x1, batch 100); (b) the project's
 * WRN-28-2 layout (stem 16, stages 32/64/128 of `repeat` pre-activation blocks, 32x32x3, batch 64).
 */
import * as os from 'os';
import * as tf from '@tensorflow/tfjs';
import { batchNormTraining, installWasmTrainingKernels } from '../src/backend/wasm-training';

type Variant = 'naive' | 'fast' | 'fast+bn';

interface Options {
  model: 'cnn' | 'wrn' | 'all';
  repeat: number;
  variants: Variant[];
  steps: number;
  profile: boolean;
  verbose: boolean;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { model: 'all', repeat: 4, variants: ['naive', 'fast', 'fast+bn'], steps: 5, profile: false, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--model') opts.model = next() as Options['model'];
    else if (a === '--repeat') opts.repeat = Number(next());
    else if (a === '--variants') {
      opts.variants = next().split(',') as Variant[];
      const bad = opts.variants.filter((v) => !['naive', 'fast', 'fast+bn'].includes(v));
      if (bad.length) throw new Error(`unknown variant ${bad.join(', ')}: use naive, fast, fast+bn`);
    }
    else if (a === '--steps') opts.steps = Number(next());
    else if (a === '--profile') opts.profile = true;
    else if (a === '--verbose') opts.verbose = true;
    else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

/** Deterministic uniform values in [-scale, scale): the benchmark needs repeatable inputs, not good ones. */
function lcgValues(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 2 * scale;
  }
  return out;
}

let seedCounter = 1;
function param(shape: number[], scale: number): tf.Variable {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.variable(tf.tensor(lcgValues(n, seedCounter++, scale), shape));
}

interface Net {
  name: string;
  batch: number;
  inputShape: [number, number, number];
  vars: tf.Variable[];
  forward(x: tf.Tensor4D, bn: BnMode): tf.Tensor2D;
}

type BnMode = 'moments' | 'fused-grad';

function teCnn(): Net {
  const k1 = param([3, 3, 1, 16], Math.sqrt(6 / 9));
  const b1 = param([16], 0);
  const k2 = param([3, 3, 16, 32], Math.sqrt(6 / 144));
  const b2 = param([32], 0);
  const wd = param([32 * 7 * 7, 10], Math.sqrt(6 / (1568 + 10)));
  const bd = param([10], 0);
  return {
    name: 'TE MNIST CNN',
    batch: 100,
    inputShape: [28, 28, 1],
    vars: [k1, b1, k2, b2, wd, bd],
    forward(x) {
      const conv1 = tf.add(tf.conv2d(x, k1 as tf.Tensor4D, 1, 'same'), b1) as tf.Tensor4D;
      const y1 = tf.relu(tf.maxPool(conv1, 3, 2, 'same'));
      const conv2 = tf.add(tf.conv2d(y1, k2 as tf.Tensor4D, 1, 'same'), b2) as tf.Tensor4D;
      const y = tf.relu(tf.maxPool(conv2, 3, 2, 'same'));
      const flat = tf.reshape(y, [x.shape[0], 32 * 7 * 7]) as tf.Tensor2D;
      return tf.add(tf.matMul(flat, wd as tf.Tensor2D), bd) as tf.Tensor2D;
    },
  };
}

function wrn(repeat: number): Net {
  const vars: tf.Variable[] = [];
  const conv = (k: number, cin: number, cout: number): tf.Tensor4D => {
    const v = param([k, k, cin, cout], Math.sqrt(3 * 2 / (k * k * cout)));
    vars.push(v);
    return v as tf.Tensor4D;
  };
  const bnParams = (c: number): [tf.Tensor1D, tf.Tensor1D] => {
    const g = tf.variable(tf.ones([c]));
    const b = tf.variable(tf.zeros([c]));
    vars.push(g, b);
    return [g as tf.Tensor1D, b as tf.Tensor1D];
  };
  const bn = (x: tf.Tensor4D, [g, b]: [tf.Tensor1D, tf.Tensor1D], mode: BnMode): tf.Tensor4D => {
    if (mode === 'fused-grad') return batchNormTraining(x, g, b, 1e-3).y;
    const { mean, variance } = tf.moments(x, [0, 1, 2]);
    return tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, b, g, 1e-3);
  };
  const stem = conv(3, 3, 16);
  interface Block {
    bn1: [tf.Tensor1D, tf.Tensor1D];
    conv1: tf.Tensor4D;
    bn2: [tf.Tensor1D, tf.Tensor1D];
    conv2: tf.Tensor4D;
    shortcut?: tf.Tensor4D;
    stride: number;
    activateShortcut: boolean;
  }
  const blocks: Block[] = [];
  let cin = 16;
  for (let s = 0; s < 3; s++) {
    const width = 32 << s;
    for (let i = 0; i < repeat; i++) {
      blocks.push({
        bn1: bnParams(cin),
        conv1: conv(3, cin, width),
        bn2: bnParams(width),
        conv2: conv(3, width, width),
        shortcut: cin !== width ? conv(1, cin, width) : undefined,
        stride: i === 0 && s > 0 ? 2 : 1,
        activateShortcut: s === 0 && i === 0,
      });
      cin = width;
    }
  }
  const head = bnParams(cin);
  const wd = param([cin, 10], Math.sqrt(6 / (cin + 10)));
  const bd = param([10], 0);
  vars.push(wd, bd);
  return {
    name: `WRN-${6 * repeat + 4}-2`,
    batch: 64,
    inputShape: [32, 32, 3],
    vars,
    forward(x, mode) {
      let y = tf.conv2d(x, stem, 1, 'same');
      for (const p of blocks) {
        const act = tf.leakyRelu(bn(y, p.bn1, mode), 0.1);
        let body = tf.conv2d(act, p.conv1, p.stride, 'same');
        body = tf.conv2d(tf.leakyRelu(bn(body, p.bn2, mode), 0.1), p.conv2, 1, 'same');
        let shortcut = p.activateShortcut ? act : y;
        if (p.shortcut) shortcut = tf.conv2d(shortcut, p.shortcut, p.stride, 'same');
        y = tf.add(shortcut, body);
      }
      y = tf.leakyRelu(bn(y, head, mode), 0.1);
      const pooled = tf.mean(y, [1, 2]) as tf.Tensor2D;
      return tf.add(tf.matMul(pooled, wd as tf.Tensor2D), bd) as tf.Tensor2D;
    },
  };
}

/** The first wasm polyfill, kept here as the baseline: one transposed matmul per filter tap. */
const naiveFilterGrad: tf.KernelFunc = ({ inputs, attrs }) => {
  const { x, dy } = inputs as { x: tf.Tensor4D; dy: tf.Tensor4D };
  const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const info = tf.backend_util.computeConv2DInfo(x.shape, a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode);
  const { top, bottom, left, right } = info.padInfo;
  const [n, , , cin] = x.shape;
  const { outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw } = info;
  return tf.tidy(() => {
    const xp = tf.pad(x, [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ]);
    const dy2 = tf.reshape(dy, [n * oh * ow, info.outChannels]) as tf.Tensor2D;
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < info.filterHeight; i++) {
      for (let j = 0; j < info.filterWidth; j++) {
        const slice = tf.stridedSlice(xp, [0, i, j, 0], [n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, cin], [1, sh, sw, 1]);
        taps.push(tf.matMul(tf.reshape(slice, [n * oh * ow, cin]) as tf.Tensor2D, dy2, true, false));
      }
    }
    return tf.reshape(tf.stack(taps), a.filterShape);
  }) as unknown as tf.TensorInfo;
};

/** The wasm kernels that installWasmTrainingKernels() registers or replaces. */
const TRAINING_KERNELS = [tf.Conv2DBackpropFilter, tf.Conv2DBackpropInput, tf.MaxPoolGrad, tf.Sum, tf.Mean, tf.Identity, tf.Tile];
type KernelSet = tf.KernelConfig[];

function snapshot(): KernelSet {
  return TRAINING_KERNELS.map((name) => tf.getKernel(name, 'wasm')).filter((k): k is tf.KernelConfig => k != null);
}

function useKernels(set: KernelSet): void {
  for (const k of set) {
    if (tf.getKernel(k.kernelName, 'wasm') != null) tf.unregisterKernel(k.kernelName, 'wasm');
    tf.registerKernel(k);
  }
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

interface Timing {
  wall: number;
  cpu: number;
}

/**
 * Median seconds per call after one warm-up call (wasm ops run synchronously, so a return means
 * done), by wall clock and by this process's CPU time. The wasm backend uses one thread, so the
 * two agree on an idle machine; on a shared one the CPU time is the steadier figure.
 */
function timeIt(fn: () => void, reps: number): Timing {
  fn();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    wall.push(Number(process.hrtime.bigint() - t0) / 1e9);
    cpu.push((c.user + c.system) / 1e6);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

function printProfileTop(info: Awaited<ReturnType<typeof tf.profile>>): void {
  const byName = new Map<string, { ms: number; count: number }>();
  for (const k of info.kernels) {
    const e = byName.get(k.name) ?? { ms: 0, count: 0 };
    if (typeof k.kernelTimeMs === 'number') e.ms += k.kernelTimeMs;
    e.count++;
    byName.set(k.name, e);
  }
  const rows = [...byName.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15);
  const total = [...byName.values()].reduce((s, e) => s + e.ms, 0);
  console.log(`    kernel time ${total.toFixed(0)} ms; top kernels:`);
  for (const [name, e] of rows) console.log(`      ${name.padEnd(28)} ${e.ms.toFixed(1).padStart(9)} ms  x${e.count}`);
}

function row(net: Net, pass: string, t: Timing): string[] {
  return [net.name, pass, String(net.batch), (net.batch / t.wall).toFixed(1), (t.wall * 1000).toFixed(0), (net.batch / t.cpu).toFixed(1)];
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  // Stock kernels first, so the baseline can be restored after ours are installed.
  require('@tensorflow/tfjs-backend-wasm');
  const naive: KernelSet = [
    ...snapshot(),
    { kernelName: tf.Conv2DBackpropFilter, backendName: 'wasm', kernelFunc: naiveFilterGrad },
  ];
  installWasmTrainingKernels();
  await tf.setBackend('wasm');
  await tf.ready();
  const ours = snapshot();

  const nets: Net[] = [];
  if (opts.model === 'cnn' || opts.model === 'all') nets.push(teCnn());
  if (opts.model === 'wrn' || opts.model === 'all') nets.push(wrn(opts.repeat));

  const rows: string[][] = [];
  for (const net of nets) {
    const [h, w, c] = net.inputShape;
    const x = tf.tensor4d(lcgValues(net.batch * h * w * c, 7, 1), [net.batch, h, w, c]);
    const labels = tf.oneHot(tf.tensor1d(Array.from({ length: net.batch }, (_, i) => (i * 7) % 10), 'int32'), 10);
    const hasBn = net.name.startsWith('WRN');
    const fwdReps = Math.max(3, Math.min(20, opts.steps * (hasBn ? 2 : 4)));
    const fwd = timeIt(() => {
      const logits = tf.tidy(() => net.forward(x, 'moments'));
      logits.dataSync();
      logits.dispose();
    }, fwdReps);
    rows.push(row(net, 'forward', fwd));
    console.log(`${net.name}: forward ${(net.batch / fwd.wall).toFixed(1)} img/s`);

    for (const variant of opts.variants) {
      if (variant === 'fast+bn' && !hasBn) continue;
      useKernels(variant === 'naive' ? naive : ours);
      const bnMode: BnMode = variant === 'fast+bn' ? 'fused-grad' : 'moments';
      const optimizer = tf.train.adam(1e-3);
      const losses: number[] = [];
      const step = (): void => {
        const loss = optimizer.minimize(
          () => tf.losses.softmaxCrossEntropy(labels, net.forward(x, bnMode)) as tf.Scalar,
          true,
          net.vars,
        );
        if (loss) {
          losses.push(loss.dataSync()[0]);
          loss.dispose();
        }
      };
      // The naive WRN step takes tens of seconds: time it once.
      const reps = variant === 'naive' && hasBn ? 1 : opts.steps;
      const t = timeIt(step, reps);
      const label = `train (${variant})`;
      rows.push(row(net, label, t));
      const lossText = opts.verbose ? losses.map((l) => l.toFixed(3)).join(' ') : `${losses[0].toFixed(3)} -> ${losses[losses.length - 1].toFixed(3)}`;
      console.log(`${net.name}: ${label} ${(net.batch / t.wall).toFixed(1)} img/s; loss ${lossText}`);
      if (opts.profile) {
        const info = await tf.profile(() => step());
        printProfileTop(info);
      }
      optimizer.dispose();
    }
    tf.dispose([x, labels]);
  }
  useKernels(ours);

  const header = ['model', 'pass', 'batch', 'img/s', 'ms/batch', 'img/s (cpu time)'];
  const widths = header.map((hd, i) => Math.max(hd.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((v, i) => (i < 2 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  console.log('');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const load = os.loadavg()[0];
  console.log(`wasm backend, SIMD ${simd}, threads 1, Node ${process.version}, load average ${load.toFixed(2)} on ${os.cpus().length} CPUs`);
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
