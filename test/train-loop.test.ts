import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { getAlgorithm } from '../src/algorithms/registry';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import { train } from '../src/train/trainer';
import { listCheckpoints, loadCheckpoint } from '../src/train/checkpoint';
import { selectBackend } from '../src/backend/select';
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

  test('the tensor count stays flat over a thousand mixmatch steps', async () => {
    const counts: number[] = [];
    await train(config('mixmatch', dir, { batch: 4, train_kimg: 4, report_kimg: 4, save_kimg: 4, warmup_kimg: 1 }), syntheticData(), {
      onStep: () => counts.push(tf.memory().numTensors),
    });
    expect(counts).toHaveLength(1024);
    expect(counts[1023]).toBe(counts[9]);
    expect(Math.max(...counts.slice(9))).toBe(counts[9]);
  });

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
