import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { getAlgorithm } from '../src/algorithms/registry';
import { percentileThreshold, realmix, tsaKeep, tsaThreshold } from '../src/algorithms/realmix';
import type { HParamValue, Inputs, StepContext } from '../src/algorithms/types';
import { selectBackend } from '../src/backend/select';
import { encodeImageExample } from '../src/data/example';
import { encodePngSync } from '../src/data/png';
import { writeRecords } from '../src/data/tfrecord';
import { UserError } from '../src/errors';
import { RandomState } from '../src/random';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import { loadTrainingData } from '../src/train/dataset';
import { runDirFor, train } from '../src/train/trainer';
import { trainingBackends } from './helpers/backends';
import { bandImages, syntheticData } from './helpers/synthetic';

/**
 * RealMix's loss on a hand-made batch against plain float64 JavaScript (the network is a fixed
 * linear map of the flattened image, so interleaving does not change any row's logits), its
 * schedules, its run name, its data, and a short training run.
 */

const K = 3;
const B = 4;
const D = 4;

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): number[] {
  const r = new RandomState(seed);
  return Array.from({ length: n }, () => r.uniform(-1, 1));
}

/** A fixed linear map: the first three features are the logits, the fourth shifts them. */
const W = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, -0.5, 0.25];
/**
 * Labelled rows chosen so that, at thr = 0.6, TSA's intended rule drops rows 0 and 2 and keeps
 * 1 and 3, and the original's rule (thresholds on logits, any class) keeps row 0 as well.
 */
const MIXED_X = [2, 0, -1, 0, 0.5, 0.2, 0.1, 0, -0.5, -0.2, -1, 0, 1, 0, -0.2, 0, ...values(2 * B * D, 8).map((v) => v * 3)];
/** Mixed labels: rows 0-3 labelled (two one-hot, two mixtures), rows 4-11 guesses. */
const MIXED_Y: number[][] = [
  [1, 0, 0],
  [0, 0, 1],
  [0.7, 0.3, 0],
  [0, 0.55, 0.45],
  ...Array.from({ length: 2 * B }, (_, i) => {
    const v = values(K, 20 + i).map((x) => Math.exp(2 * x));
    const s = v.reduce((a, b) => a + b);
    return v.map((x) => x / s);
  }),
];

function logitsOf(row: number): number[] {
  const out = new Array(K).fill(0);
  for (let c = 0; c < K; c++) for (let d = 0; d < D; d++) out[c] += MIXED_X[row * D + d] * W[d * K + c];
  return out;
}

function softmax(l: number[]): number[] {
  const m = Math.max(...l);
  const e = l.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b);
  return e.map((v) => v / s);
}

interface Expected {
  xe: number;
  l2u: number;
  loss: number;
  keep: number[];
  mask: number[];
  threshold: number;
}

function expected(hp: { tsa: string; compat: boolean; percent: number; wMatch: number; warmupKimg: number }, imagesSeen: number, totalImages: number): Expected {
  const r = imagesSeen / totalImages;
  const coeff = hp.tsa === 'linear_schedule' ? r : hp.tsa === 'exp_schedule' ? Math.exp(5 * (r - 1)) : 1 - Math.exp(-5 * r);
  const thr = coeff * (1 - 1 / K) + 1 / K;
  const keep: number[] = [];
  let num = 0;
  for (let b = 0; b < B; b++) {
    const l = logitsOf(b);
    const p = softmax(l);
    const y = MIXED_Y[b];
    let k: boolean;
    if (hp.tsa === 'none') k = true;
    else if (hp.compat) k = p.some((pc, c) => pc * (y[c] > 0 ? 1 : 0) < l[c] * thr);
    else k = p.every((pc, c) => y[c] <= 0 || pc < thr * y[c]);
    keep.push(k ? 1 : 0);
    const lse = Math.log(l.reduce((a, v) => a + Math.exp(v), 0));
    const ce = y.reduce((a, yc, c) => a + yc * (lse - l[c]), 0);
    num += ce * (k ? 1 : 0);
  }
  const kept = keep.reduce((a, b) => a + b);
  const xe = num / Math.max(kept, 1);
  const n = 2 * B;
  const probs = Array.from({ length: n }, (_, i) => softmax(logitsOf(B + i)));
  const top = probs.map((p) => Math.max(...p));
  const sorted = top.slice().sort((a, b) => a - b);
  const threshold = hp.percent > 0 ? sorted[Math.floor(n * hp.percent)] : NaN;
  const mask: number[] = top.map((m) => (hp.percent > 0 ? (m > threshold ? 1 : 0) : 1));
  let sq = 0;
  probs.forEach((p, i) => p.forEach((pc, c) => (sq += (MIXED_Y[B + i][c] - pc) ** 2 * mask[i])));
  const l2u = hp.percent > 0 ? sq / Math.max(K * mask.reduce((a, b) => a + b), 1) : sq / (n * K);
  const w = hp.wMatch * Math.min(Math.max(imagesSeen / (hp.warmupKimg * 1024), 0), 1);
  return { xe, l2u, loss: xe + w * l2u, keep, mask, threshold };
}

function linearContext(hp: Record<string, HParamValue>, imagesSeen: number, totalImages: number, w: tf.Tensor2D): StepContext {
  return {
    forward: (x) => tf.matMul(tf.reshape(x, [x.shape[0], D]), w),
    nclass: K,
    imagesSeen,
    totalImages,
    batch: B,
    hp,
    rng: new RandomState(1),
  };
}

async function realmixLoss(hp: Record<string, HParamValue>, imagesSeen: number, totalImages: number): Promise<Record<string, number>> {
  const named = tf.tidy(() => {
    const x = tf.tensor4d(MIXED_X, [3 * B, 2, 2, 1]);
    const inputs: Inputs = { x: tf.slice(x, 0, B), labels: tf.tensor1d([0, 2, 0, 1], 'int32'), u: [tf.slice(x, B, B), tf.slice(x, 2 * B, B)] };
    const targets = { mixedX: x, mixedY: tf.tensor2d(MIXED_Y) };
    const r = realmix.loss(linearContext(hp, imagesSeen, totalImages, tf.tensor2d(W, [D, K])), inputs, targets);
    return { loss: r.loss, ...r.scalars } as Record<string, tf.Tensor>;
  });
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(named)) out[k] = (await v.data())[0];
  tf.dispose(Object.values(named));
  return out;
}

const HP = (over: Record<string, HParamValue>) => resolveSettings(realmix, {}, over).hp;

describe.each(['cpu', ...trainingBackends()])('realmix loss on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  test.each([
    ['linear_schedule', false, 0.5],
    ['linear_schedule', true, 0.5],
    ['exp_schedule', false, -1],
    ['log_schedule', false, 0.25],
    ['none', false, -1],
  ])('tsa %s compat %s percent_mask %s matches the plain computation', async (tsa, compat, percent) => {
    const imagesSeen = 40 * 1024;
    const total = 100 * 1024;
    const hp = HP({ tsa, tsa_compat: compat, percent_mask: percent, w_match: 75, warmup_kimg: 64 });
    const want = expected({ tsa, compat, percent, wMatch: 75, warmupKimg: 64 }, imagesSeen, total);
    const got = await realmixLoss(hp, imagesSeen, total);
    expect(got['losses/xe']).toBeCloseTo(want.xe, 4);
    expect(got['losses/l2u']).toBeCloseTo(want.l2u, 5);
    expect(got.loss).toBeCloseTo(want.loss, 3);
    expect(got['losses/overall']).toBeCloseTo(want.loss, 3);
    if (percent > 0) {
      expect(got['losses/percent_confidence_mask']).toBeCloseTo(want.threshold, 5);
      expect(got['losses/high_prob_ratio']).toBeCloseTo(want.mask.reduce((a, b) => a + b) / want.mask.length, 6);
    } else {
      expect(got['losses/high_prob_ratio']).toBeUndefined();
    }
  });

  test('the hand-made batch exercises both outcomes of TSA, and the two rules differ on it', async () => {
    const base = { tsa: 'linear_schedule', percent: -1, wMatch: 75, warmupKimg: 64 };
    const intended = expected({ ...base, compat: false }, 40 * 1024, 100 * 1024);
    const compat = expected({ ...base, compat: true }, 40 * 1024, 100 * 1024);
    expect(intended.keep).toEqual([0, 1, 0, 1]);
    expect(compat.keep).toEqual([1, 1, 0, 1]);
    const [a, b] = tf.tidy(() => {
      const logits = tf.tensor2d(Array.from({ length: B }, (_, r) => logitsOf(r)));
      const y = tf.tensor2d(MIXED_Y.slice(0, B));
      const thr = tsaThreshold('linear_schedule', 0.4, K);
      return [tsaKeep(logits, y, thr, false), tsaKeep(logits, y, thr, true)];
    });
    expect([Array.from(await a.data()), Array.from(await b.data())]).toEqual([intended.keep, compat.keep]);
    tf.dispose([a, b]);
  });

  test('the percentile threshold is the floor(N r)-th smallest top probability', async () => {
    const m = [0.9, 0.4, 0.7, 0.55, 0.61];
    for (const [r, want] of [[0.01, 0.4], [0.2, 0.55], [0.5, 0.61], [0.99, 0.9]] as const) {
      const t = tf.tidy(() => percentileThreshold(tf.tensor1d(m), r));
      expect((await t.data())[0]).toBeCloseTo(want, 6);
      t.dispose();
    }
  });
});

test('TSA thresholds rise from 1/K to 1 along each schedule', () => {
  expect(tsaThreshold('linear_schedule', 0, 10)).toBeCloseTo(0.1, 12);
  expect(tsaThreshold('linear_schedule', 0.5, 10)).toBeCloseTo(0.55, 12);
  expect(tsaThreshold('linear_schedule', 1, 10)).toBeCloseTo(1, 12);
  expect(tsaThreshold('exp_schedule', 1, 4)).toBeCloseTo(1, 12);
  expect(tsaThreshold('exp_schedule', 0, 4)).toBeCloseTo(Math.exp(-5) * 0.75 + 0.25, 12);
  expect(tsaThreshold('log_schedule', 0, 4)).toBeCloseTo(0.25, 12);
  expect(tsaThreshold('log_schedule', 0.2, 4)).toBeCloseTo((1 - Math.exp(-1)) * 0.75 + 0.25, 12);
});

test('realmix settings: defaults, run name as the original, validation', () => {
  const s = resolveSettings(realmix, {}, { arch: 'resnet', tsa: 'linear_schedule' });
  expect(s.hp).toMatchObject({ beta: 0.75, w_match: 75, tsa: 'linear_schedule', percent_mask: -1, tsa_compat: false });
  const cfg = toTrainConfig(realmix, s, { trainDir: '/x', augment: 'cifar10', seed: 1 });
  const data = { name: 'cifar10_aug50.3@450-50', base: 'cifar10', nclass: 10, shape: { height: 32, width: 32, channels: 3 } };
  expect(path.basename(runDirFor(cfg, data))).toBe(
    'RealMix_archresnet_augmentationcifar10_batch64_beta0.75_ema0.999_filters32_lr0.002_nclass10_ood_mask-1.0_repeat4_scales3_tsalinear_schedule_w_match75.0_wd0.02',
  );
  const compat = toTrainConfig(realmix, resolveSettings(realmix, {}, { tsa: 'linear_schedule', tsa_compat: true }), { trainDir: '/x', seed: 1 });
  expect(path.basename(runDirFor(compat, data))).toMatch(/_tsa_compatTrue_/);
  expect(() => resolveSettings(realmix, {}, { percent_mask: 1 })).toThrow(UserError);
  expect(() => resolveSettings(realmix, {}, { tsa: 'cosine' })).toThrow(/tsa must be one of none, linear_schedule/);
  expect(getAlgorithm('realmix').tagStyle).toBe('realmix');
});

describe('realmix on augmented copies', () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-realmix-'));
    const write = (file: string, set: ReturnType<typeof bandImages>, labelOffset = 0) => {
      const size = 8 * 8;
      const recs = Array.from({ length: set.count }, (_, i) =>
        encodeImageExample(encodePngSync(set.images.subarray(i * size, (i + 1) * size), 8, 8, 1), set.labels[i] + labelOffset),
      );
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeRecords(file, recs);
    };
    write(path.join(root, 'SSL', 'toy.1@8-label.tfrecord'), bandImages(8, 2, 8, 1));
    write(path.join(root, 'SSL', 'toy.1@8-unlabel.tfrecord'), bandImages(20, 2, 8, 2));
    // the copies differ from the base unlabelled file in count, so the test sees which one was read
    write(path.join(root, 'SSL', 'toy_aug3.1@8-unlabel.tfrecord'), bandImages(60, 2, 8, 3));
    write(path.join(root, 'toy-test.tfrecord'), bandImages(6, 2, 8, 4));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('the unlabelled side and the validation records come from the copies; labels and test from the base split', async () => {
    const d = await loadTrainingData(root, 'toy_aug3.1@8-4', { unlabeled: true });
    expect(d.labeled.count).toBe(8);
    expect(d.valid.count).toBe(4);
    expect(d.unlabeled!.count).toBe(56);
    expect(d.test.count).toBe(6);
    expect(d.base).toBe('toy');
  });

  test('labels outside 0..nclass-1 are refused with one line', async () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-badlabel-'));
    try {
      const set = bandImages(4, 2, 8, 1);
      set.labels[2] = -1;
      const size = 64;
      const recs = Array.from({ length: 4 }, (_, i) => encodeImageExample(encodePngSync(set.images.subarray(i * size, (i + 1) * size), 8, 8, 1), set.labels[i]));
      fs.mkdirSync(path.join(bad, 'SSL'));
      writeRecords(path.join(bad, 'SSL', 'toy.1@4-label.tfrecord'), recs);
      writeRecords(path.join(bad, 'SSL', 'toy.1@4-unlabel.tfrecord'), recs.slice(0, 1).concat(recs.slice(0, 1)).map((r) => r));
      writeRecords(path.join(bad, 'toy-test.tfrecord'), recs.slice(0, 2));
      await expect(loadTrainingData(bad, 'toy.1@4-0', { unlabeled: true })).rejects.toThrow(/labelled image 2 has label -1, outside 0\.\.1/);
      await expect(loadTrainingData(root, 'toy.1@8-0', { unlabeled: false, nclass: 1 })).rejects.toThrow(/outside 0\.\.0 \(the class mapping names 1 classes\)/);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
  });
});

describe.each(trainingBackends())('realmix training on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-realmix-train-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a few steps on tiny data lower the loss and log RealMix scalars', async () => {
    const s = resolveSettings(realmix, {}, {
      arch: 'te_cnn',
      batch: 16,
      train_kimg: 1,
      report_kimg: 1,
      save_kimg: 1,
      eval_batch: 16,
      lr: 0.01,
      warmup_kimg: 0,
      w_match: 10,
      tsa: 'linear_schedule',
      percent_mask: 0.25,
    });
    const losses: number[] = [];
    const logs: string[] = [];
    const r = await train(toTrainConfig(realmix, s, { trainDir: dir, seed: 2, augment: 'none' }), syntheticData(), {
      onStep: (_, l) => losses.push(l),
      log: (l) => logs.push(l),
    });
    const mean = (a: number[]) => a.reduce((x, y) => x + y) / a.length;
    expect(mean(losses.slice(-8))).toBeLessThan(mean(losses.slice(0, 8)));
    const rep = r.reports[r.reports.length - 1];
    expect(Object.keys(rep.losses).sort()).toEqual(
      ['losses/high_prob_ratio', 'losses/l2u', 'losses/max_unsup_prob', 'losses/mean_unsup_prob', 'losses/min_unsup_prob', 'losses/overall', 'losses/percent_confidence_mask', 'losses/xe'].sort(),
    );
    expect(logs.some((l) => /^ood  (\d\.\d{4} ?){10}$/.test(l))).toBe(true);
    expect(path.basename(r.runDir)).toBe('RealMix_archte_cnn_augmentationnone_batch16_beta0.75_ema0.999_lr0.01_nclass2_ood_mask0.25_tsalinear_schedule_w_match10.0_wd0.02');
  });
});
