import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { accumulateEnsemble, ensembleTargets, gaussianRampUp, temporalEnsembling } from '../src/algorithms/temporal-ensembling';
import type { HParamValue, Inputs, SampleState, StepContext } from '../src/algorithms/types';
import { selectBackend } from '../src/backend/select';
import { UserError } from '../src/errors';
import { RandomState } from '../src/random';
import { listCheckpoints, loadCheckpoint } from '../src/train/checkpoint';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import { train } from '../src/train/trainer';
import { trainingBackends } from './helpers/backends';
import { syntheticData } from './helpers/synthetic';

/**
 * Temporal Ensembling: the per-image ensemble and its bias correction, the loss on a hand-made
 * batch against plain float64 JavaScript, and training with the ensemble kept in checkpoints.
 */

const K = 2;
const D = 4;
const W = [1, -1, 0.5, 0.2, -0.3, 0.8, 0.7, -0.6];
const X = [0.4, -0.2, 0.9, 0.1, -0.5, 0.6, 0.2, -0.8];
const U = [0.3, 0.3, -0.4, 0.7, 0.9, -0.1, 0.5, 0.2];
const LABELS = [1, 0];

function probsOf(rows: number[], i: number): number[] {
  const l = Array.from({ length: K }, (_, c) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += rows[i * D + d] * W[d * K + c];
    return s;
  });
  const m = Math.max(...l);
  const e = l.map((v) => Math.exp(v - m));
  const sum = e.reduce((a, b) => a + b);
  return e.map((v) => v / sum);
}

const hp = (over: Record<string, HParamValue> = {}) => resolveSettings(temporalEnsembling, {}, over).hp;

test('the ensemble is a moving average with the start-up bias divided out', () => {
  const alpha = 0.6;
  const state: SampleState = { width: K + 1, labeled: new Float32Array(3 * (K + 1)), unlabeled: new Float32Array(2 * (K + 1)) };
  const inputs = { labeledIndex: Int32Array.from([2]), unlabeledIndex: Int32Array.from([0]) } as Inputs;
  // nothing seen yet: no targets
  expect(Array.from(ensembleTargets(state, inputs, K, alpha).seen)).toEqual([0, 0]);
  const p1 = [0.8, 0.2, 0.3, 0.7];
  const p2 = [0.6, 0.4, 0.1, 0.9];
  accumulateEnsemble(state, inputs, Float32Array.from(p1), K, alpha);
  let t = ensembleTargets(state, inputs, K, alpha);
  // after one visit the corrected target is the prediction itself: 0.4 p / (1 - 0.6)
  expect(Array.from(t.seen)).toEqual([1, 1]);
  p1.forEach((v, i) => expect(t.target[i]).toBeCloseTo(v, 6));
  accumulateEnsemble(state, inputs, Float32Array.from(p2), K, alpha);
  t = ensembleTargets(state, inputs, K, alpha);
  p1.forEach((v, i) => expect(t.target[i]).toBeCloseTo((0.6 * 0.4 * v + 0.4 * p2[i]) / (1 - 0.36), 6));
  // other images untouched; visit counts kept after the ensemble values
  expect(Array.from(state.labeled.slice(0, 6))).toEqual([0, 0, 0, 0, 0, 0]);
  expect(state.labeled[2 * 3 + 2]).toBe(2);
  expect(state.unlabeled[2]).toBe(2);
});

test('the ramp-up follows exp(-5 (1 - t)^2)', () => {
  expect(gaussianRampUp(0, 100)).toBeCloseTo(Math.exp(-5), 12);
  expect(gaussianRampUp(50, 100)).toBeCloseTo(Math.exp(-1.25), 12);
  expect(gaussianRampUp(100, 100)).toBe(1);
  expect(gaussianRampUp(500, 100)).toBe(1);
  expect(() => resolveSettings(temporalEnsembling, {}, { alpha: 1 })).toThrow(UserError);
});

describe.each(['cpu', ...trainingBackends()])('temporal ensembling loss on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  test('masked cross-entropy plus ramped consistency, and the update after the step', async () => {
    const alpha = 0.6;
    const state: SampleState = { width: K + 1, labeled: new Float32Array(2 * (K + 1)), unlabeled: new Float32Array(4 * (K + 1)) };
    // labelled image 1 seen once before with prediction [0.3, 0.7]; unlabelled image 3 twice
    state.labeled.set([0.4 * 0.3, 0.4 * 0.7, 1], 3);
    state.unlabeled.set([0.5, 0.14, 2], 9);
    const inputs: Inputs = {
      x: tf.tensor4d(X, [2, 2, 2, 1]),
      labels: tf.tensor1d(LABELS, 'int32'),
      u: [tf.tensor4d(U, [2, 2, 2, 1])],
      labeledIndex: Int32Array.from([1, 0]),
      unlabeledIndex: Int32Array.from([3, 2]),
    };
    const w = tf.tensor2d(W, [D, K]);
    const imagesSeen = 300;
    const totalImages = 1000;
    const h = hp({ warmup_pos: 0.5, w_max: 30 });
    const ctx: StepContext = {
      forward: (x) => tf.matMul(tf.reshape(x, [x.shape[0], D]), w),
      nclass: K,
      imagesSeen,
      totalImages,
      batch: 2,
      hp: h,
      rng: new RandomState(1),
      sampleState: state,
    };
    const targets = tf.tidy(() => temporalEnsembling.targets!(ctx, inputs));
    const r = temporalEnsembling.loss(ctx, inputs, targets);
    const [loss, xe, mse] = await Promise.all([r.loss, r.scalars['losses/xe'], r.scalars['losses/mse']].map(async (t) => (await t.data())[0]));

    const p = [probsOf(X, 0), probsOf(X, 1), probsOf(U, 0), probsOf(U, 1)];
    const wantXe = (-Math.log(p[0][1]) - Math.log(p[1][0])) / 2;
    const zL1 = [0.3, 0.7]; // 0.4 p / (1 - 0.6)
    const zU3 = [0.5 / (1 - 0.36), 0.14 / (1 - 0.36)];
    let sq = 0;
    for (let c = 0; c < K; c++) sq += (p[0][c] - zL1[c]) ** 2 + (p[2][c] - zU3[c]) ** 2;
    const wantMse = sq / (4 * K); // rows without a target count as zero in the mean
    const wantW = 30 * Math.exp(-5 * (1 - 300 / 500) ** 2);
    expect(xe).toBeCloseTo(wantXe, 5);
    expect(mse).toBeCloseTo(wantMse, 6);
    expect(loss).toBeCloseTo(wantXe + wantW * wantMse, 5);

    temporalEnsembling.update!(ctx, inputs, { probs: (await r.outputs!.probs.data()) as Float32Array });
    expect(state.labeled[3]).toBeCloseTo(alpha * 0.12 + (1 - alpha) * p[0][0], 6);
    expect(state.labeled[5]).toBe(2);
    expect(state.labeled[0]).toBeCloseTo((1 - alpha) * p[1][0], 6);
    expect(state.unlabeled[6]).toBeCloseTo((1 - alpha) * p[3][0], 6);
    expect(state.unlabeled[11]).toBe(3);
    tf.dispose([r.loss, ...Object.values(r.scalars), ...Object.values(r.outputs!), ...Object.values(targets), w, inputs.x, inputs.labels, ...inputs.u]);
  });
});

describe.each(trainingBackends())('temporal ensembling training on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-te-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const config = (trainDir: string) =>
    toTrainConfig(
      temporalEnsembling,
      resolveSettings(temporalEnsembling, {}, { arch: 'te_cnn', batch: 16, train_kimg: 1, report_kimg: 1, save_kimg: 1, eval_batch: 16, lr: 0.01 }),
      { trainDir, seed: 5, augment: 'none' },
    );

  test('lowers the loss, keeps the ensemble in checkpoints and resumes bit for bit', async () => {
    const losses: number[] = [];
    const whole = await train(config(path.join(dir, 'a')), syntheticData(), { onStep: (_, l) => losses.push(l) });
    const mean = (a: number[]) => a.reduce((x, y) => x + y) / a.length;
    expect(mean(losses.slice(-8))).toBeLessThan(mean(losses.slice(0, 8)));
    expect(path.basename(whole.runDir)).toBe('TemporalEnsembling_alpha0.6_archte_cnn_batch16_ema0.999_lr0.01_nclass2_w_max30.0_warmup_pos0.27_wd0.02');
    let steps = 0;
    await train(config(path.join(dir, 'b')), syntheticData(), { shouldStop: () => ++steps > 20 });
    const second = await train(config(path.join(dir, 'b')), syntheticData());
    expect(second.resumedFrom).toBe(20 * 16);
    const a = loadCheckpoint(listCheckpoints(path.join(whole.runDir, 'tf')).pop()!.path);
    const b = loadCheckpoint(listCheckpoints(path.join(second.runDir, 'tf')).pop()!.path);
    const ensemble = a.tensors.get('sample/unlabeled')!;
    expect(ensemble.shape).toEqual([32, 3]);
    // every unlabelled image has been visited (64 steps of 16 over 32 images), labelled ones too
    for (let i = 0; i < 32; i++) expect(ensemble.values[i * 3 + 2]).toBe(32);
    expect(a.tensors.get('sample/labeled')!.values[2]).toBe(128);
    for (const [name, t] of a.tensors) {
      const u = b.tensors.get(name)!;
      let maxDiff = 0;
      for (let i = 0; i < t.values.length; i++) maxDiff = Math.max(maxDiff, Math.abs(t.values[i] - u.values[i]));
      expect([name, maxDiff]).toEqual([name, 0]);
    }
  });
});
