import * as tf from '@tensorflow/tfjs';
import { ict } from '../src/algorithms/ict';
import { meanTeacher } from '../src/algorithms/mean-teacher';
import { mixupSsl } from '../src/algorithms/mixup';
import { piModel } from '../src/algorithms/pi-model';
import { pseudoLabel } from '../src/algorithms/pseudo-label';
import { supervisedMixup } from '../src/algorithms/supervised-mixup';
import type { Algorithm, ForwardOptions, HParamValue, Inputs, StepContext } from '../src/algorithms/types';
import { vat } from '../src/algorithms/vat';
import { resolveSettings } from '../src/train/config';
import type { Rng } from '../src/random';

/**
 * Each baseline's loss on a hand-made batch, against the same quantities computed here in plain
 * float64 JavaScript. The network is a fixed linear map of the flattened image (a second map
 * stands for the EMA weights), so every expected value is elementary arithmetic.
 */

beforeAll(async () => {
  await tf.setBackend('cpu');
});

type Mat = number[][];

const K = 3;
const B = 4;
const D = 4; // 2x2x1 images

const X: Mat = [
  [0.5, -0.2, 0.1, 0.9],
  [-0.7, 0.3, 0.8, -0.1],
  [0.2, 0.6, -0.5, 0.4],
  [-0.3, -0.9, 0.2, 0.7],
];
const LABELS = [0, 2, 1, 2];
const U0: Mat = [
  [0.9, -0.8, 0.7, 0.6],
  [0.1, 0.2, -0.1, 0.05],
  [-0.9, 0.8, -0.6, -0.7],
  [0.4, -0.3, 0.9, -0.2],
];
const U1: Mat = [
  [0.8, -0.6, 0.5, 0.7],
  [0.0, 0.3, -0.2, 0.1],
  [-0.7, 0.9, -0.8, -0.5],
  [0.3, -0.1, 0.6, -0.4],
];
const W: Mat = [
  [1.5, -0.5, 0.2],
  [-1.0, 0.8, 0.3],
  [0.7, -1.2, 0.6],
  [0.9, 0.4, -1.4],
];
const W_EMA: Mat = [
  [1.2, -0.3, 0.1],
  [-0.8, 0.9, 0.2],
  [0.5, -1.0, 0.8],
  [1.1, 0.2, -1.2],
];

// ---- plain-JS reference arithmetic ----
const matmul = (a: Mat, b: Mat): Mat => a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const transpose = (a: Mat): Mat => a[0].map((_, j) => a.map((r) => r[j]));
const softmax = (z: number[]): number[] => {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};
const mean = (v: number[]): number => v.reduce((a, b) => a + b, 0) / v.length;
const sum = (v: number[]): number => v.reduce((a, b) => a + b, 0);
const onehot = (k: number): number[] => Array.from({ length: K }, (_, c) => (c === k ? 1 : 0));
const crossEntropy = (target: number[], logits: number[]): number => {
  const p = softmax(logits);
  return -sum(target.map((t, c) => t * Math.log(p[c])));
};
const kl = (qLogits: number[], pLogits: number[]): number => {
  const q = softmax(qLogits);
  const p = softmax(pLogits);
  return sum(q.map((v, c) => v * (Math.log(v) - Math.log(p[c]))));
};
const entropy = (logits: number[]): number => -sum(softmax(logits).map((p) => p * Math.log(p)));
const mixReversed = (rows: Mat, lam: number[]): Mat => rows.map((r, b) => r.map((v, i) => lam[b] * v + (1 - lam[b]) * rows[rows.length - 1 - b][i]));
const sqErrorMean = (a: Mat, b: Mat): number => mean(a.flatMap((r, i) => r.map((v, c) => (v - b[i][c]) ** 2)));
const lambdaPrime = (draws: number[]): number[] => draws.map((l) => Math.max(l, 1 - l));
/** d W-shaped gradient of mean_b f(x_b W) given per-row dL/dlogits. */
const linearGrad = (xs: Mat, dLogits: Mat): Mat => matmul(transpose(xs), dLogits).map((r) => r.map((v) => v / xs.length));
const addScaled = (a: Mat, b: Mat, s: number): Mat => a.map((r, i) => r.map((v, j) => v + s * b[i][j]));
/** vat_utils.get_normalized_vector on one flattened image. */
const normalizeImage = (d: number[]): number[] => {
  const m = Math.max(...d.map(Math.abs));
  const a = d.map((v) => v / (1e-12 + m));
  const n = Math.sqrt(1e-6 + sum(a.map((v) => v * v)));
  return a.map((v) => v / n);
};
const xeExpected = mean(X.map((x, b) => crossEntropy(onehot(LABELS[b]), matmul([x], W)[0])));
const xeGrad = linearGrad(
  X,
  X.map((x, b) => softmax(matmul([x], W)[0]).map((p, c) => p - onehot(LABELS[b])[c])),
);

// ---- a stub step context ----
interface Stub {
  ctx: StepContext;
  calls: Array<ForwardOptions & { phase: string }>;
  w: tf.Variable;
  phase: { name: string };
}

function hpOf(algo: Algorithm, overrides: Record<string, HParamValue>): Record<string, HParamValue> {
  return { ...Object.fromEntries(algo.hparams.map((h) => [h.name, h.default])), ...overrides };
}

function stub(algo: Algorithm, overrides: Record<string, HParamValue>, draws: { betas?: number[]; normals?: number[] } = {}): Stub {
  const betas = [...(draws.betas ?? [])];
  const normals = [...(draws.normals ?? [])];
  const unused = () => {
    throw new Error('unexpected draw');
  };
  const rng: Rng = {
    beta: () => {
      if (betas.length === 0) throw new Error('more beta draws than expected');
      return betas.shift()!;
    },
    standardNormal: () => {
      if (normals.length === 0) throw new Error('more normal draws than expected');
      return normals.shift()!;
    },
    randomSample: unused,
    uniform: unused,
    randint: unused,
    shuffle: unused,
    permutation: unused,
  };
  const w = tf.variable(tf.tensor2d(W));
  const wEma = tf.tensor2d(W_EMA);
  const calls: Stub['calls'] = [];
  const phase = { name: 'targets' };
  const ctx: StepContext = {
    forward: (x, opts) => {
      calls.push({ ...opts, phase: phase.name });
      return tf.matMul(tf.reshape(x, [x.shape[0], D]) as tf.Tensor2D, opts.ema ? wEma : w);
    },
    nclass: K,
    imagesSeen: 100,
    totalImages: 1000,
    batch: B,
    hp: hpOf(algo, overrides),
    rng,
  };
  return { ctx, calls, w, phase };
}

const image = (rows: Mat) => tf.tensor4d(rows.flat(), [rows.length, 2, 2, 1]);
const inputsOf = (views: Mat[]): Inputs => ({ x: image(X), labels: tf.tensor1d(LABELS, 'int32'), u: views.map(image) });

interface Outcome {
  loss: number;
  scalars: Record<string, number>;
  targets: Record<string, number[]>;
  grad: number[];
  calls: Stub['calls'];
}

/** Runs targets (outside the tape) and loss (inside), as the training step does. */
function evaluate(algo: Algorithm, views: Mat[], overrides: Record<string, HParamValue>, draws: { betas?: number[]; normals?: number[] } = {}): Outcome {
  const s = stub(algo, overrides, draws);
  const before = tf.memory().numTensors;
  const out = tf.tidy(() => {
    const inputs = inputsOf(views);
    const targets = algo.targets ? algo.targets(s.ctx, inputs) : {};
    s.phase.name = 'loss';
    const scalars: Record<string, number> = {};
    const { value, grads } = tf.variableGrads(() => {
      const r = algo.loss(s.ctx, inputs, targets);
      for (const [k, v] of Object.entries(r.scalars)) scalars[k] = v.dataSync()[0];
      return r.loss;
    }, [s.w]);
    return {
      loss: value.dataSync()[0],
      scalars,
      targets: Object.fromEntries(Object.entries(targets).map(([k, t]) => [k, Array.from(t.dataSync())])),
      grad: Array.from(Object.values(grads)[0].dataSync()),
    };
  });
  s.w.dispose();
  expect(tf.memory().numTensors).toBeLessThanOrEqual(before);
  return { ...out, calls: s.calls };
}

function expectClose(got: number[], want: number[], digits = 5): void {
  expect(got).toHaveLength(want.length);
  got.forEach((g, i) => expect([i, g]).toEqual([i, expect.closeTo(want[i], digits)]));
}

/** The labelled call comes first in the loss and is the only one that keeps batch-norm statistics. */
function expectOneBnUpdate(calls: Stub['calls']): void {
  const kept = calls.filter((c) => c.updateBn);
  expect(kept).toHaveLength(1);
  expect(calls.find((c) => c.phase === 'loss')!.updateBn).toBe(true);
  for (const c of calls) expect(c.training).toBe(true);
}

const RAMP = 100 / (0.4 * 1000); // imagesSeen / (warmup_pos * totalImages)

test('pi_model: xe + ramp * cw * MSE(softmax(u1) with no gradient, softmax(u2))', () => {
  const r = evaluate(piModel, [U0, U1], {});
  const teacher = matmul(U0, W).map(softmax);
  const student = matmul(U1, W).map(softmax);
  const pm = sqErrorMean(teacher, student);
  expect(r.scalars['losses/xe']).toBeCloseTo(xeExpected, 5);
  expect(r.scalars['losses/pm']).toBeCloseTo(pm, 6);
  expect(r.loss).toBeCloseTo(xeExpected + RAMP * 10 * pm, 5);
  expectOneBnUpdate(r.calls);
  expect(r.calls.some((c) => c.ema)).toBe(false);
  // the gradient flows through the student only
  const dStudent = student.map((s, b) => {
    const g = s.map((p, c) => (2 / K) * (p - teacher[b][c]));
    const dot = sum(g.map((v, c) => v * s[c]));
    return s.map((p, c) => p * (g[c] - dot));
  });
  expectClose(r.grad, addScaled(xeGrad, linearGrad(U1, dStudent), RAMP * 10).flat());
});

test('mean_teacher: the EMA network on view 1 is the target for the raw network on view 2', () => {
  const r = evaluate(meanTeacher, [U0, U1], { consistency_weight: 7 });
  const teacher = matmul(U0, W_EMA).map(softmax);
  const mt = sqErrorMean(teacher, matmul(U1, W).map(softmax));
  expect(r.scalars['losses/mt']).toBeCloseTo(mt, 6);
  expect(r.loss).toBeCloseTo(xeExpected + RAMP * 7 * mt, 5);
  expectOneBnUpdate(r.calls);
  expect(r.calls.filter((c) => c.ema).map((c) => c.phase)).toEqual(['targets']);
  expect(r.calls.filter((c) => c.ema)[0].updateBn).toBeFalsy();
});

test('ict: teacher and images mixed with the reversed batch, lambda = max(l, 1 - l)', () => {
  const draws = [0.3, 0.8, 0.5, 0.1];
  const r = evaluate(ict, [U0], { consistency_weight: 20, beta: 0.75 }, { betas: draws });
  const lam = lambdaPrime(draws);
  const mixedU = mixReversed(U0, lam);
  const teacher = mixReversed(matmul(U0, W_EMA).map(softmax), lam);
  expectClose(r.targets.mixedU, mixedU.flat(), 6);
  expectClose(r.targets.teacher, teacher.flat(), 6);
  const mt = sqErrorMean(teacher, matmul(mixedU, W).map(softmax));
  expect(r.scalars['losses/mt']).toBeCloseTo(mt, 6);
  expect(r.loss).toBeCloseTo(xeExpected + RAMP * 20 * mt, 5);
  expectOneBnUpdate(r.calls);
  expect(r.calls.filter((c) => c.ema).map((c) => c.phase)).toEqual(['targets']);
});

test('pseudo_label: argmax labels where the top probability passes the threshold, averaged over the whole batch', () => {
  const threshold = 0.6;
  const r = evaluate(pseudoLabel, [U0], { threshold, consistency_weight: 3 });
  const logits = matmul(U0, W);
  const probs = logits.map(softmax);
  const mask = probs.map((p) => (Math.max(...p) > threshold ? 1 : 0));
  // the fixture must exercise both sides of the threshold
  expect(mask).toContain(0);
  expect(mask).toContain(1);
  const hard = probs.map((p) => onehot(p.indexOf(Math.max(...p))));
  const pl = mean(logits.map((z, b) => mask[b] * crossEntropy(hard[b], z)));
  expect(r.scalars['losses/pl']).toBeCloseTo(pl, 6);
  expect(r.loss).toBeCloseTo(xeExpected + RAMP * 3 * pl, 5);
  expectOneBnUpdate(r.calls);
  // the pseudo-labels and the mask carry no gradient: d/dz of the masked cross-entropy only
  const dPl = probs.map((p, b) => p.map((v, c) => mask[b] * (v - hard[b][c])));
  expectClose(r.grad, addScaled(xeGrad, linearGrad(U0, dPl), RAMP * 3).flat());
});

test('vat: power-iteration perturbation from the generator, KL(student || stopped teacher), entropy term', () => {
  const normals = [0.3, -1.2, 0.8, 0.1, -0.4, 0.9, 1.5, -0.6, 0.7, 0.2, -0.3, -1.1, 0.05, 0.6, -0.9, 1.3];
  const xi = 0.5;
  const eps = 2;
  const r = evaluate(vat, [U0], { xi, vat_eps: eps, vat: 0.3, entmin_weight: 0.06 }, { normals });
  // the probe d and the gradient of mean_b KL(p(u) || p(u + d)) with respect to d (linear model)
  const d = U0.map((_, b) => normalizeImage(normals.slice(b * D, (b + 1) * D)).map((v) => xi * v));
  const clean = matmul(U0, W);
  const probed = matmul(
    U0.map((u, b) => u.map((v, i) => v + d[b][i])),
    W,
  );
  const gradD = U0.map((_, b) => {
    const diff = softmax(probed[b]).map((p, c) => (p - softmax(clean[b])[c]) / B);
    return W.map((wi) => sum(wi.map((v, c) => v * diff[c])));
  });
  const rAdv = gradD.map((g) => normalizeImage(g).map((v) => eps * v));
  expectClose(r.targets.rAdv, rAdv.flat(), 5);
  const perturbed = U0.map((u, b) => u.map((v, i) => v + rAdv[b][i]));
  const student = matmul(perturbed, W);
  const lossVat = mean(student.map((z, b) => kl(z, clean[b])));
  const entmin = mean(clean.map(entropy));
  expect(r.scalars['losses/vat']).toBeCloseTo(lossVat, 5);
  expect(r.scalars['losses/entmin']).toBeCloseTo(entmin, 5);
  expect(r.loss).toBeCloseTo(xeExpected + RAMP * 0.3 * lossVat + 0.06 * entmin, 5);
  expectOneBnUpdate(r.calls);
  // gradients: through the student of the KL (teacher stopped) and through the entropy
  const dVat = student.map((z, b) => {
    const s = softmax(z);
    const t = softmax(clean[b]);
    const k = kl(z, clean[b]);
    return s.map((p, c) => p * (Math.log(p) - Math.log(t[c]) - k));
  });
  const dEnt = clean.map((z) => {
    const p = softmax(z);
    const h = entropy(z);
    return p.map((v) => -v * (Math.log(v) + h));
  });
  const want = addScaled(addScaled(xeGrad, linearGrad(perturbed, dVat), RAMP * 0.3), linearGrad(U0, dEnt), 0.06);
  expectClose(r.grad, want.flat(), 5);
});

test('mixup: labelled and unlabelled batches each mixed with their reversal; guesses unsharpened', () => {
  const drawsX = [0.2, 0.9, 0.45, 0.6];
  const drawsU = [0.7, 0.05, 0.5, 0.35];
  const r = evaluate(mixupSsl, [U0], { beta: 0.75 }, { betas: [...drawsX, ...drawsU] });
  const lx = lambdaPrime(drawsX);
  const lu = lambdaPrime(drawsU);
  const mixedX = mixReversed(X, lx);
  const labelsX = mixReversed(LABELS.map(onehot), lx);
  const mixedU = mixReversed(U0, lu);
  const labelsU = mixReversed(matmul(U0, W).map(softmax), lu);
  expectClose(r.targets.labelsU, labelsU.flat(), 6);
  const xe = mean(matmul(mixedX, W).map((z, b) => crossEntropy(labelsX[b], z)));
  const xeu = mean(matmul(mixedU, W).map((z, b) => crossEntropy(labelsU[b], z)));
  expect(r.scalars['losses/xe']).toBeCloseTo(xe, 5);
  expect(r.scalars['losses/xeu']).toBeCloseTo(xeu, 5);
  expect(r.loss).toBeCloseTo(xe + xeu, 5);
  expectOneBnUpdate(r.calls);
  // the guess is a training-mode pass of the raw weights, outside the loss
  expect(r.calls.filter((c) => c.phase === 'targets')).toEqual([{ training: true, phase: 'targets' }]);
});

test('supervised_mixup: fs_mixup cross-entropy on the reversed-batch mix, weight decay 0.002', () => {
  const draws = [0.15, 0.55, 0.95, 0.4];
  const r = evaluate(supervisedMixup, [], { beta: 0.5 }, { betas: draws });
  const lam = lambdaPrime(draws);
  const mixedX = mixReversed(X, lam);
  const labels = mixReversed(LABELS.map(onehot), lam);
  const xe = mean(matmul(mixedX, W).map((z, b) => crossEntropy(labels[b], z)));
  expect(r.loss).toBeCloseTo(xe, 5);
  expect(r.calls).toEqual([{ training: true, updateBn: true, phase: 'loss' }]);
  expect(supervisedMixup.views({})).toBe(0);
  expect(resolveSettings(supervisedMixup, {}, {}).shared.wd).toBe(0.002);
});

test('the warm-up ramp: clip(images seen / (warmup_pos * total images), 0, 1)', () => {
  const pm = (imagesSeen: number) => {
    const s = stub(piModel, { warmup_pos: 0.5 });
    s.ctx.imagesSeen = imagesSeen;
    const v = tf.tidy(() => {
      const inputs = inputsOf([U0, U1]);
      const t = piModel.targets!(s.ctx, inputs);
      return piModel.loss(s.ctx, inputs, t).loss.dataSync()[0];
    });
    s.w.dispose();
    return v - xeExpected;
  };
  const full = pm(500);
  expect(full).toBeGreaterThan(0);
  expect(pm(0)).toBeCloseTo(0, 5);
  expect(pm(125)).toBeCloseTo(full / 4, 5);
  expect(pm(5000)).toBeCloseTo(full, 5);
});

test('hyperparameters and class names follow the Google scripts', () => {
  const defaults = (a: Algorithm) => Object.fromEntries(a.hparams.filter((h) => h.inName !== false).map((h) => [h.name, h.default]));
  expect([ict.className, defaults(ict)]).toEqual(['ICT', { consistency_weight: 50, warmup_pos: 0.4, beta: 0.5 }]);
  expect([meanTeacher.className, defaults(meanTeacher)]).toEqual(['MeanTeacher', { consistency_weight: 50, warmup_pos: 0.4, smoothing: 0.001 }]);
  expect([piModel.className, defaults(piModel)]).toEqual(['PiModel', { consistency_weight: 10, warmup_pos: 0.4, smoothing: 0.1 }]);
  expect([pseudoLabel.className, defaults(pseudoLabel)]).toEqual(['PseudoLabel', { consistency_weight: 1, threshold: 0.95, warmup_pos: 0.4, smoothing: 0.1 }]);
  expect([vat.className, defaults(vat)]).toEqual(['VAT', { vat: 0.3, vat_eps: 6, entmin_weight: 0.06, warmup_pos: 0.4, smoothing: 0.1 }]);
  expect([mixupSsl.className, defaults(mixupSsl)]).toEqual(['Mixup', { beta: 0.5 }]);
  expect([supervisedMixup.className, defaults(supervisedMixup)]).toEqual(['FSMixup', { beta: 0.5 }]);
  expect(vat.hparams.find((h) => h.name === 'xi')!.default).toBe(1e-6);
  const views = Object.fromEntries([ict, meanTeacher, piModel, pseudoLabel, vat, mixupSsl, supervisedMixup].map((a) => [a.name, a.views({})]));
  expect(views).toEqual({ ict: 1, mean_teacher: 2, pi_model: 2, pseudo_label: 1, vat: 1, mixup: 1, supervised_mixup: 0 });
});
