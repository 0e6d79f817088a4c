/**
 * Does training input keep up? Runs the real training loop (`train()`, as `ssl train` does) on
 * synthetic in-memory data and times its steps with the dataset's augmentation and with `none`
 * (the identity: the batches cost no more than pre-augmented data would), for several augmentation
 * worker counts. The question: is the step rate with augmentation within 10% of the one without?
 *
 *   npx tsc -p . && node dist/scripts/bench-input.js [options]
 *
 *   --backend <name>     tfjs backend (tensorflow, webgpu, wasm, cpu, auto; default auto)
 *   --workloads <list>   mixmatch-cnn,fixmatch-resnet (default both)
 *   --workers <list>     augmentation worker counts (default 0,1,2; 0 = on the training thread)
 *   --steps <n>          timed steps per run (default 30 for mixmatch-cnn, 5 for fixmatch-resnet)
 *   --warmup <n>         untimed steps first (default 3)
 *   --rounds <n>         runs of each setting, alternating; the median rate counts (default 3 for
 *                        mixmatch-cnn, 2 for fixmatch-resnet)
 *   --repeat <n>         the resnet's blocks per scale (default 4: WRN-28-2)
 *   --json <file>        where the results go (default experiments/bench-input.json)
 *
 * Workloads:
 *   mixmatch-cnn      MixMatch, te_cnn, 28x28x1 (MNIST-shaped), batch 100, K = 2 views; 'mnist' vs 'none'
 *   fixmatch-resnet   FixMatch, resnet filters 32, 32x32x3, batch 16, uratio 7, strong view
 *                     RandAugment; 'cifar10' + 'cifar10+randaugment' vs 'none' + 'none+none'
 *
 * A run's rate is its timed steps over the time between the step before them and the last one
 * (the `onStep` hook), so model building, evaluation and the checkpoint written at the stop are
 * left out. Augmented and plain runs alternate, round after round, and a setting's rate is the
 * median of its rounds. aug/none is the median of the rounds' own ratios: a round's two runs ran
 * one after the other and saw much the same load, so this is steadier than a ratio of medians.
 * "input ms" is the time per timed step the loop spent in `feeder.next()` (augmenting in-thread,
 * or waiting for workers that fell behind): the stall itself, which a busy machine blurs far less
 * than the rates. The load average and the CPU share other processes took are printed with the
 * results: the machine may be shared, and a busy one makes every rate read low (TensorFlow's
 * threads spin while they wait for work, which can hide other processes from that share).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { cpuSample, cpuShares } from './cpu-share';
import { getAlgorithm } from '../src/algorithms/registry';
import { selectBackend } from '../src/backend/select';
import { RandomState } from '../src/random';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import type { ImageSet, TrainingData } from '../src/train/dataset';
import { InputFeeder } from '../src/train/feeder';
import { train } from '../src/train/trainer';
import { writeFileAtomic } from '../src/util/atomic-write';

interface Workload {
  name: string;
  algo: string;
  shape: { height: number; width: number; channels: number };
  base: string;
  settings: Record<string, number | string>;
  /** Settings of the plain run besides --augment none. */
  plain: Record<string, string>;
  steps: number;
  rounds: number;
}

const WORKLOADS: Workload[] = [
  {
    name: 'mixmatch-cnn',
    algo: 'mixmatch',
    shape: { height: 28, width: 28, channels: 1 },
    base: 'mnist',
    settings: { arch: 'te_cnn', batch: 100 },
    plain: {},
    steps: 30,
    rounds: 3,
  },
  {
    name: 'fixmatch-resnet',
    algo: 'fixmatch',
    shape: { height: 32, width: 32, channels: 3 },
    base: 'cifar10',
    settings: { arch: 'resnet', filters: 32, batch: 16, uratio: 7, augment_strong: 'randaugment' },
    plain: { augment_strong: 'none' },
    steps: 5,
    rounds: 2,
  },
];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : undefined;
}

/** Smooth per-class patterns with noise: augmentations do real work on them (crops, colour ops). */
function images(count: number, nclass: number, shape: Workload['shape'], seed: number): ImageSet {
  const { height: h, width: w, channels: c } = shape;
  const rng = new RandomState(seed);
  const px = new Uint8Array(count * h * w * c);
  const labels = new Int32Array(count);
  for (let i = 0, o = 0; i < count; i++) {
    const k = (labels[i] = i % nclass);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++, o++) {
          const v = 128 + 80 * Math.sin((x * (k + 1)) / 6 + ch) * Math.cos((y - k) / 5) + rng.uniform(-25, 25);
          px[o] = Math.max(0, Math.min(255, Math.round(v)));
        }
      }
    }
  }
  return { images: px, labels, count, shape };
}

function syntheticData(wl: Workload): TrainingData {
  const nclass = 10;
  return {
    name: `${wl.base}.1@250-0`,
    base: wl.base,
    labeled: images(250, nclass, wl.shape, 1),
    unlabeled: images(4000, nclass, wl.shape, 2),
    valid: images(0, nclass, wl.shape, 3),
    test: images(20, nclass, wl.shape, 4),
    nclass,
    shape: wl.shape,
  };
}

interface RunResult {
  workload: string;
  augment: string;
  workers: number;
  steps: number;
  seconds: number;
  stepsPerSec: number;
  imagesPerSec: number;
  /** Share of the machine's CPU that other processes took meanwhile. */
  othersCpu: number;
  /** Milliseconds per timed step spent in feeder.next(). */
  inputMs: number;
}

interface Setting {
  workload: string;
  augment: string;
  workers: number;
  /** Median over the rounds. */
  stepsPerSec: number;
  imagesPerSec: number;
  rounds: number[];
  othersCpu: number[];
  /** Median over the rounds. */
  inputMs: number;
  inputMsRounds: number[];
}

/** Wall time spent inside InputFeeder.next, summed while `counting`. */
const inputWait = { ms: 0, counting: false };
const feederNext = InputFeeder.prototype.next;
InputFeeder.prototype.next = async function (this: InputFeeder, batch: number) {
  const t = performance.now();
  try {
    return await feederNext.call(this, batch);
  } finally {
    if (inputWait.counting) inputWait.ms += performance.now() - t;
  }
};

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function timeRun(wl: Workload, data: TrainingData, augmented: boolean, workers: number, steps: number, warmup: number, repeat: number): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-bench-input-'));
  try {
    const algo = getAlgorithm(wl.algo);
    const flags = { ...wl.settings, ...(augmented ? {} : wl.plain), repeat, train_kimg: 65536, report_kimg: 65536, save_kimg: 65536, eval_batch: 64 };
    const s = resolveSettings(algo, {}, flags);
    const cfg = { ...toTrainConfig(algo, s, { trainDir: dir, seed: 1, augment: augmented ? undefined : 'none' }), augmentWorkers: workers };
    const total = warmup + steps;
    let t0 = 0;
    let t1 = 0;
    let c0 = cpuSample();
    let done = 0;
    await train(cfg, data, {
      onStep: () => {
        done++;
        if (done === warmup) {
          t0 = performance.now();
          c0 = cpuSample();
          inputWait.ms = 0;
          inputWait.counting = true;
        }
        if (done === total) {
          t1 = performance.now();
          inputWait.counting = false;
        }
      },
      shouldStop: () => done >= total,
    });
    const c1 = cpuSample();
    const seconds = (t1 - t0) / 1000;
    const { others } = cpuShares(c0, c1);
    return {
      workload: wl.name,
      augment: augmented ? 'dataset' : 'none',
      workers,
      steps,
      seconds,
      stepsPerSec: steps / seconds,
      imagesPerSec: (steps * cfg.batch) / seconds,
      othersCpu: others,
      inputMs: inputWait.ms / steps,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const backend = await selectBackend(arg('backend') ?? 'auto');
  const names = (arg('workloads') ?? WORKLOADS.map((w) => w.name).join(',')).split(',');
  const unknown = names.filter((n) => !WORKLOADS.some((w) => w.name === n));
  if (unknown.length > 0) throw new Error(`unknown workload ${unknown.join(', ')}; valid: ${WORKLOADS.map((w) => w.name).join(', ')}`);
  const workerCounts = (arg('workers') ?? '0,1,2').split(',').map(Number);
  const warmup = Number(arg('warmup') ?? 3);
  const repeat = Number(arg('repeat') ?? 4);
  const json = arg('json') ?? path.join('experiments', 'bench-input.json');
  const loadBefore = os.loadavg();
  console.log(`bench-input: backend ${backend.name} (${backend.source}); ${os.cpus().length} cores, load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);
  const results: RunResult[] = [];
  for (const wl of WORKLOADS.filter((w) => names.includes(w.name))) {
    const data = syntheticData(wl);
    const steps = Number(arg('steps') ?? wl.steps);
    const rounds = Number(arg('rounds') ?? wl.rounds);
    for (let round = 1; round <= rounds; round++) {
      for (const workers of workerCounts) {
        for (const augmented of [true, false]) {
          const r = await timeRun(wl, data, augmented, workers, steps, warmup, repeat);
          console.log(
            `  round ${round}: ${wl.name} augment ${r.augment.padEnd(7)} workers ${workers}: ${r.stepsPerSec.toFixed(2)} steps/s, input ${r.inputMs.toFixed(1)} ms/step ` +
              `(others took ~${(r.othersCpu * 100).toFixed(0)}% CPU)`,
          );
          results.push(r);
        }
      }
    }
  }
  const settings: Setting[] = [];
  for (const r of results) {
    let s = settings.find((x) => x.workload === r.workload && x.augment === r.augment && x.workers === r.workers);
    if (!s) settings.push((s = { workload: r.workload, augment: r.augment, workers: r.workers, stepsPerSec: 0, imagesPerSec: 0, rounds: [], othersCpu: [], inputMs: 0, inputMsRounds: [] }));
    s.rounds.push(r.stepsPerSec);
    s.othersCpu.push(r.othersCpu);
    s.inputMsRounds.push(r.inputMs);
    s.stepsPerSec = median(s.rounds);
    s.inputMs = median(s.inputMsRounds);
    s.imagesPerSec = (s.stepsPerSec * r.imagesPerSec) / r.stepsPerSec;
  }
  const rows = settings
    .filter((r) => r.augment === 'dataset')
    .map((a) => {
      const n = settings.find((r) => r.workload === a.workload && r.workers === a.workers && r.augment === 'none')!;
      const ratio = median(a.rounds.map((v, i) => v / n.rounds[i]));
      return { ...a, ratio, plain: n };
    });
  console.log('');
  console.log('workload          workers   steps/s aug   steps/s none   img/s aug   img/s none   aug/none   within 10%   input ms aug   input ms none');
  for (const r of rows) {
    console.log(
      `${r.workload.padEnd(17)} ${String(r.workers).padStart(7)}   ${r.stepsPerSec.toFixed(2).padStart(11)}   ${r.plain.stepsPerSec.toFixed(2).padStart(12)}   ` +
        `${r.imagesPerSec.toFixed(0).padStart(9)}   ${r.plain.imagesPerSec.toFixed(0).padStart(10)}   ${r.ratio.toFixed(3).padStart(8)}   ${(r.ratio >= 0.9 ? 'yes' : 'no').padStart(10)}   ` +
        `${r.inputMs.toFixed(1).padStart(12)}   ${r.plain.inputMs.toFixed(1).padStart(13)}`,
    );
  }
  const loadAfter = os.loadavg();
  console.log(`load average after: ${loadAfter.map((l) => l.toFixed(2)).join(' ')}`);
  const out = {
    backend: { name: backend.name, source: backend.source },
    cores: os.cpus().length,
    loadAverage: { before: loadBefore, after: loadAfter },
    warmup,
    resnetRepeat: repeat,
    results: rows.map(({ plain, ...r }) => ({ ...r, plainStepsPerSec: plain.stepsPerSec, plainImagesPerSec: plain.imagesPerSec, plainRounds: plain.rounds, plainOthersCpu: plain.othersCpu, plainInputMs: plain.inputMs })),
  };
  fs.mkdirSync(path.dirname(path.resolve(json)), { recursive: true });
  writeFileAtomic(json, JSON.stringify(out, null, 2) + '\n');
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
