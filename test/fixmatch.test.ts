import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { fixmatch } from '../src/algorithms/fixmatch';
import type { HParamValue, Inputs, StepContext } from '../src/algorithms/types';
import { selectBackend } from '../src/backend/select';
import { UserError } from '../src/errors';
import { RandomState } from '../src/random';
import { listCheckpoints, loadCheckpoint } from '../src/train/checkpoint';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import { stopGradient } from '../src/train/ops';
import { runDirFor, train } from '../src/train/trainer';
import { trainingBackends } from './helpers/backends';
import { syntheticData } from './helpers/synthetic';

/**
 * FixMatch's loss on a hand-made batch against plain float64 JavaScript, including its gradient
 * (nothing flows through the pseudo-labels), and training with its whole recipe: uratio, weak and
 * strong views, CTAugment probes and state, Nesterov SGD, cosine decay, the L2 term, resuming.
 */

const K = 3;
const D = 4;
const B = 2;
const N = 4; // unlabelled images (uratio 2)
const W = [1.2, -0.4, 0.3, -0.7, 0.9, 0.2, 0.5, -0.6, 1.1, 0.4, 0.3, -0.8];
const X = [0.5, -0.2, 0.1, 0.9, -0.7, 0.3, 0.8, -0.1];
const LABELS = [0, 2];
// weak rows 0 and 2 are confident (top probability above 0.6), 1 and 3 are not
const WEAK = [3, -1, 0, 0.5, 0.2, 0.1, 0.3, -0.2, -1, 0.5, 2.5, 1, 0.1, 0.2, 0.1, 0.1];
const STRONG = [0.4, 0.3, -0.9, 0.2, -0.5, 0.8, 0.1, 0.6, 0.7, -0.3, 0.2, -0.4, 0.2, 0.9, -0.6, 0.3];

function logits(rows: number[], i: number): number[] {
  return Array.from({ length: K }, (_, c) => {
    let s = 0;
    for (let d = 0; d < D; d++) s += rows[i * D + d] * W[d * K + c];
    return s;
  });
}
const softmax = (l: number[]) => {
  const m = Math.max(...l);
  const e = l.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b);
  return e.map((v) => v / s);
};
const ce = (l: number[], k: number) => Math.log(l.reduce((a, v) => a + Math.exp(v), 0)) - l[k];

function expected(confidence: number, wu: number) {
  let xe = 0;
  const gW = new Array(D * K).fill(0);
  for (let b = 0; b < B; b++) {
    const l = logits(X, b);
    xe += ce(l, LABELS[b]) / B;
    const p = softmax(l);
    for (let d = 0; d < D; d++) for (let c = 0; c < K; c++) gW[d * K + c] += (X[b * D + d] * (p[c] - (c === LABELS[b] ? 1 : 0))) / B;
  }
  let xeu = 0;
  const mask: number[] = [];
  for (let i = 0; i < N; i++) {
    const pw = softmax(logits(WEAK, i));
    const top = Math.max(...pw);
    const m = top >= confidence ? 1 : 0;
    mask.push(m);
    const target = pw.indexOf(top);
    const ls = logits(STRONG, i);
    xeu += (ce(ls, target) * m) / N;
    const ps = softmax(ls);
    for (let d = 0; d < D; d++) for (let c = 0; c < K; c++) gW[d * K + c] += (wu * m * STRONG[i * D + d] * (ps[c] - (c === target ? 1 : 0))) / N;
  }
  return { xe, xeu, loss: xe + wu * xeu, mask, gW };
}

describe.each(['cpu', ...trainingBackends()])('fixmatch loss on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  test('loss, mask and gradient match the plain computation', async () => {
    const hp = resolveSettings(fixmatch, {}, { confidence: 0.6, wu: 2, uratio: 2 }).hp as Record<string, HParamValue>;
    const want = expected(0.6, 2);
    expect(want.mask).toEqual([1, 0, 1, 0]);
    const w = tf.variable(tf.tensor2d(W, [D, K]), true, `fixmatch-test-w-${backend}`);
    const ctx: StepContext = {
      forward: (x) => tf.matMul(tf.reshape(x, [x.shape[0], D]), w),
      nclass: K,
      imagesSeen: 0,
      totalImages: 1024,
      batch: B,
      hp,
      rng: new RandomState(1),
    };
    const inputs: Inputs = {
      x: tf.tensor4d(X, [B, 2, 2, 1]),
      labels: tf.tensor1d(LABELS, 'int32'),
      u: [tf.tensor4d(WEAK, [N, 2, 2, 1])],
      uStrong: [tf.tensor4d(STRONG, [N, 2, 2, 1])],
    };
    const kept: tf.Tensor[] = [];
    const { value, grads } = tf.variableGrads(() => {
      const r = fixmatch.loss(ctx, inputs, {});
      kept.push(tf.keep(r.scalars['losses/xe']), tf.keep(r.scalars['losses/xeu']), tf.keep(r.scalars['monitors/mask']));
      return r.loss;
    }, [w]);
    const [xe, xeu, mask] = await Promise.all(kept.map(async (t) => (await t.data())[0]));
    expect(xe).toBeCloseTo(want.xe, 5);
    expect(xeu).toBeCloseTo(want.xeu, 5);
    expect(mask).toBeCloseTo(0.5, 6);
    expect((await value.data())[0]).toBeCloseTo(want.loss, 5);
    const g = await grads[w.name].data();
    want.gW.forEach((v, i) => expect(g[i]).toBeCloseTo(v, 5));
    tf.dispose([value, ...Object.values(grads), ...kept, inputs.x, inputs.labels, ...inputs.u, ...inputs.uStrong!, w]);
  });

  test('stopGradient passes values and blocks gradients', async () => {
    const x = tf.variable(tf.tensor1d([1, 2, 3]), true, `stop-gradient-test-${backend}`);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(stopGradient(x), x)) as tf.Scalar, [x]);
    expect((await value.data())[0]).toBeCloseTo(14, 5);
    expect(Array.from(await grads[x.name].data())).toEqual([1, 2, 3]);
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

test('fixmatch defaults are the paper\'s and the run name is the original\'s', () => {
  const s = resolveSettings(fixmatch, {}, {});
  expect(s.hp).toEqual({ confidence: 0.95, uratio: 7, wu: 1, augment_strong: 'ctaugment' });
  expect(s.shared).toMatchObject({ lr: 0.03, wd: 0.0005, optimizer: 'sgd', momentum: 0.9, lr_decay: 'cosine', wd_mode: 'l2', ema: 0.999, batch: 64 });
  const data = { name: 'cifar10.3@250-1', base: 'cifar10', nclass: 10, shape: { height: 32, width: 32, channels: 3 } };
  const name = (flags: Record<string, HParamValue>) => path.basename(runDirFor(toTrainConfig(fixmatch, resolveSettings(fixmatch, {}, flags), { trainDir: '/x', seed: 1 }), data));
  expect(name({})).toBe('FixMatch_archresnet_batch64_confidence0.95_ema0.999_filters32_lr0.03_nclass10_repeat4_scales3_uratio7_wd0.0005_wu1.0');
  // a recipe change is part of the name, so two recipes never share a run directory
  expect(name({ augment_strong: 'randaugment', optimizer: 'adam' })).toBe(
    'FixMatch_archresnet_augment_strongrandaugment_batch64_confidence0.95_ema0.999_filters32_lr0.03_nclass10_optimizeradam_repeat4_scales3_uratio7_wd0.0005_wu1.0',
  );
  expect(() => resolveSettings(fixmatch, {}, { confidence: 1.5 })).toThrow(UserError);
  expect(() => resolveSettings(fixmatch, {}, { uratio: 0 })).toThrow(/uratio must be at least 1/);
});

describe.each(trainingBackends())('fixmatch training on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-fixmatch-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const config = (trainDir: string) =>
    toTrainConfig(
      fixmatch,
      resolveSettings(fixmatch, {}, { arch: 'te_cnn', batch: 16, uratio: 2, train_kimg: 1, report_kimg: 1, save_kimg: 1, eval_batch: 16, confidence: 0.8 }),
      { trainDir, seed: 4, augment: 'none' },
    );

  test('trains with CTAugment probes, keeps the tensor count flat, and resumes bit for bit', async () => {
    const losses: number[] = [];
    const counts: number[] = [];
    const whole = await train(config(path.join(dir, 'a')), syntheticData(), {
      onStep: (_, l) => {
        losses.push(l);
        counts.push(tf.memory().numTensors);
      },
    });
    expect(losses).toHaveLength(64);
    const mean = (a: number[]) => a.reduce((x, y) => x + y) / a.length;
    expect(mean(losses.slice(-8))).toBeLessThan(mean(losses.slice(0, 8)));
    expect(counts[63]).toBe(counts[2]);
    const rep = whole.reports[whole.reports.length - 1];
    expect(Object.keys(rep.losses).sort()).toEqual(['losses/wd', 'losses/xe', 'losses/xeu', 'monitors/lr', 'monitors/mask']);
    expect(rep.losses['monitors/lr']).toBeCloseTo(0.03 * Math.cos((7 * Math.PI * 63 * 16) / (16 * 1024)), 6);

    let steps = 0;
    const first = await train(config(path.join(dir, 'b')), syntheticData(), { shouldStop: () => ++steps > 20 });
    expect(first.stopped).toBe(true);
    const second = await train(config(path.join(dir, 'b')), syntheticData());
    expect(second.resumedFrom).toBe(20 * 16);
    const a = loadCheckpoint(listCheckpoints(path.join(whole.runDir, 'tf')).pop()!.path);
    const b = loadCheckpoint(listCheckpoints(path.join(second.runDir, 'tf')).pop()!.path);
    expect([...a.tensors.keys()].filter((k) => k.startsWith('sgd_momentum/')).length).toBeGreaterThan(0);
    for (const [name, t] of a.tensors) {
      const u = b.tensors.get(name)!;
      let maxDiff = 0;
      for (let i = 0; i < t.values.length; i++) maxDiff = Math.max(maxDiff, Math.abs(t.values[i] - u.values[i]));
      expect([name, maxDiff]).toEqual([name, 0]);
    }
    // the CTAugment weights moved away from their start and were restored exactly
    const ctaA = (a.header.meta.augmentation as unknown[])[0];
    expect(ctaA).toEqual((b.header.meta.augmentation as unknown[])[0]);
    const rates = Object.values((ctaA as { rates: Record<string, number[][]> }).rates).flat(2);
    expect(rates.some((r) => r !== 1)).toBe(true);
  });
});
