import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { getAlgorithm } from '../src/algorithms/registry';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import { train } from '../src/train/trainer';
import { listCheckpoints, loadCheckpoint } from '../src/train/checkpoint';
import { selectBackend } from '../src/backend/select';
import { getAugmentation } from '../src/data/augment';
import { RandomState } from '../src/random';
import { InputFeeder } from '../src/train/feeder';
import { syntheticData } from './helpers/synthetic';
import { trainingBackends } from './helpers/backends';

function config(algo: string, trainDir: string, overrides: Record<string, number | string> = {}) {
  const a = getAlgorithm(algo);
  const s = resolveSettings(a, {}, { arch: 'te_cnn', batch: 8, train_kimg: 1, report_kimg: 1, save_kimg: 1, eval_batch: 16, lr: 0.01, ...overrides });
  return toTrainConfig(a, s, { trainDir, seed: 3, augment: 'none' });
}

describe.each(trainingBackends())('the shared training loop on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-train-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('supervised training lowers the loss and keeps the tensor count flat', async () => {
    const losses: number[] = [];
    const counts: number[] = [];
    const r = await train(config('supervised', dir, { train_kimg: 1 }), syntheticData(), {
      onStep: (_, loss) => {
        losses.push(loss);
        counts.push(tf.memory().numTensors);
      },
    });
    expect(losses.length).toBe(128); // 1024 images / batch 8
    const first = losses.slice(0, 10).reduce((a, b) => a + b) / 10;
    const last = losses.slice(-10).reduce((a, b) => a + b) / 10;
    expect(last).toBeLessThan(first * 0.5);
    expect(counts[counts.length - 1]).toBe(counts[1]);
    expect(r.reports[r.reports.length - 1].test).toBeGreaterThan(75);
    expect(listCheckpoints(path.join(r.runDir, 'tf')).length).toBe(1);
    expect(path.basename(r.runDir)).toBe('FSBaseline_archte_cnn_batch8_ema0.999_lr0.01_nclass2_smoothing0.001_wd0.02');
  });

  // a thousand steps take a minute on an idle machine; on WebGPU over lavapipe (a CPU Vulkan) a
  // thousand take five, so there a quarter of them
  const steps = backend === 'webgpu' ? 256 : 1024;
  test(`the tensor count stays flat over ${steps} mixmatch steps`, async () => {
    const counts: number[] = [];
    await train(config('mixmatch', dir, { batch: 4, train_kimg: steps / 256, report_kimg: steps / 256, save_kimg: steps / 256, warmup_kimg: 1 }), syntheticData(), {
      onStep: () => counts.push(tf.memory().numTensors),
    });
    expect(counts).toHaveLength(steps);
    expect(counts[steps - 1]).toBe(counts[9]);
    expect(Math.max(...counts.slice(9))).toBe(counts[9]);
  }, 600_000);

  test('mixmatch trains, logs its losses, and a resumed run ends with the same weights as an uninterrupted one', async () => {
    const cfg = config('mixmatch', path.join(dir, 'a'), { batch: 16, warmup_kimg: 1 });
    const whole = await train(cfg, syntheticData());
    expect(Object.keys(whole.reports[0].losses).sort()).toEqual(['losses/l2u', 'losses/xe']);
    // stop part-way (a stop writes a checkpoint, as Ctrl-C does), then resume
    const cfg2 = config('mixmatch', path.join(dir, 'b'), { batch: 16, warmup_kimg: 1 });
    let steps = 0;
    const first = await train(cfg2, syntheticData(), { shouldStop: () => ++steps > 20 });
    expect(first.stopped).toBe(true);
    const second = await train(cfg2, syntheticData());
    expect(second.resumedFrom).toBe(20 * 16);
    const a = loadCheckpoint(listCheckpoints(path.join(whole.runDir, 'tf')).pop()!.path);
    const b = loadCheckpoint(listCheckpoints(path.join(second.runDir, 'tf')).pop()!.path);
    expect(b.header.imagesSeen).toBe(a.header.imagesSeen);
    for (const [name, t] of a.tensors) {
      const u = b.tensors.get(name)!;
      let maxDiff = 0;
      for (let i = 0; i < t.values.length; i++) maxDiff = Math.max(maxDiff, Math.abs(t.values[i] - u.values[i]));
      expect([name, maxDiff]).toEqual([name, 0]);
    }
  });
});

test('the feeder draws uratio x batch unlabelled images, weak and strong views of the same images, and their indices', async () => {
  await selectBackend('cpu');
  const data = syntheticData();
  const feeder = new InputFeeder(data, getAugmentation('none'), new RandomState(1), {
    views: 2,
    uratio: 3,
    strong: { augmentation: getAugmentation('none+cutout'), views: 1 },
  });
  const { inputs, probe } = await feeder.next(4);
  expect(inputs.x.shape).toEqual([4, 8, 8, 1]);
  expect(inputs.u.map((u) => u.shape[0])).toEqual([12, 12]);
  expect(inputs.uStrong!.map((u) => u.shape[0])).toEqual([12]);
  expect(inputs.labeledIndex).toHaveLength(4);
  expect(inputs.unlabeledIndex).toHaveLength(12);
  expect(probe).toBeNull();
  // with augmentation 'none', every weak view is exactly the indexed unlabelled image
  const u0 = await inputs.u[0].data();
  const size = 64;
  inputs.unlabeledIndex!.forEach((idx, row) => {
    for (let k = 0; k < size; k++) expect(u0[row * size + k]).toBeCloseTo((data.unlabeled!.images[idx * size + k] * 2) / 255 - 1, 5);
  });
  // the next batch continues the permutation of the 32 unlabelled images
  const next = await feeder.next(4);
  expect(new Set([...inputs.unlabeledIndex!, ...next.inputs.unlabeledIndex!]).size).toBe(24);
  tf.dispose([inputs.x, inputs.labels, ...inputs.u, ...inputs.uStrong!, next.inputs.x, next.inputs.labels, ...next.inputs.u, ...next.inputs.uStrong!]);
});
