import * as tf from '@tensorflow/tfjs';
import { toFloatImages } from '../data/augment';
import { imageSize, type ImageSet, type TrainingData } from './dataset';

/**
 * What each evaluation measures, as RealMix writes it (workflow-spec.md 3.6): accuracy on the
 * labelled, validation and test sets; the validation loss; scikit-learn's macro and weighted
 * precision, recall and F1 of the test predictions; per-class test accuracy when class names are
 * known; and the top probability of the first ten test images (the "ood" examples).
 */

/** Logits for every image of a set, in batches, as one [count * nclass] array. */
export async function predictLogits(set: Pick<ImageSet, 'images' | 'count' | 'shape'>, forward: (x: tf.Tensor4D) => tf.Tensor2D, batch: number): Promise<{ logits: Float32Array; nclass: number }> {
  const size = imageSize(set.shape);
  const { height: h, width: w, channels: c } = set.shape;
  const parts: Float32Array[] = [];
  let nclass = 0;
  for (let start = 0; start < set.count; start += batch) {
    const n = Math.min(batch, set.count - start);
    const out = tf.tidy(() => forward(tf.tensor4d(toFloatImages(set.images, start, n, size), [n, h, w, c])));
    nclass = out.shape[1];
    parts.push((await out.data()) as Float32Array);
    out.dispose();
  }
  const logits = new Float32Array(set.count * nclass);
  let at = 0;
  for (const p of parts) {
    logits.set(p, at);
    at += p.length;
  }
  return { logits, nclass };
}

/** Row-wise softmax in double precision, and the per-row log-sum-exp for the cross-entropy. */
export function softmaxRows(logits: ArrayLike<number>, nclass: number): { probs: Float64Array; logSumExp: Float64Array } {
  const n = logits.length / nclass;
  const probs = new Float64Array(logits.length);
  const logSumExp = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < nclass; c++) max = Math.max(max, logits[i * nclass + c]);
    let sum = 0;
    for (let c = 0; c < nclass; c++) sum += Math.exp(logits[i * nclass + c] - max);
    for (let c = 0; c < nclass; c++) probs[i * nclass + c] = Math.exp(logits[i * nclass + c] - max) / sum;
    logSumExp[i] = max + Math.log(sum);
  }
  return { probs, logSumExp };
}

export function argmaxRows(values: ArrayLike<number>, nclass: number): Int32Array {
  const n = values.length / nclass;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < nclass; c++) if (values[i * nclass + c] > values[i * nclass + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** Percentage of predictions equal to the labels; NaN for an empty set. */
export function accuracyPercent(pred: ArrayLike<number>, labels: ArrayLike<number>): number {
  if (labels.length === 0) return NaN;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) correct++;
  return (100 * correct) / labels.length;
}

/** Mean softmax cross-entropy of logits against integer labels; NaN for an empty set. */
export function meanCrossEntropy(logits: ArrayLike<number>, nclass: number, labels: ArrayLike<number>): number {
  if (labels.length === 0) return NaN;
  const { logSumExp } = softmaxRows(logits, nclass);
  let sum = 0;
  for (let i = 0; i < labels.length; i++) sum += logSumExp[i] - logits[i * nclass + labels[i]];
  return sum / labels.length;
}

export interface Averages {
  macro: number;
  weighted: number;
}

export interface PrecisionRecallF1 {
  precision: Averages;
  recall: Averages;
  f1: Averages;
}

/**
 * scikit-learn's precision_score / recall_score / f1_score with average='macro' and 'weighted'
 * and the default zero_division: the classes are those present in the labels or the predictions;
 * an undefined ratio counts as 0; weighted averages weigh each class by its number of true labels.
 */
export function precisionRecallF1(labels: ArrayLike<number>, pred: ArrayLike<number>): PrecisionRecallF1 {
  const classes = [...new Set([...Array.from(labels), ...Array.from(pred)])].sort((a, b) => a - b);
  const tp = new Map<number, number>();
  const predicted = new Map<number, number>();
  const support = new Map<number, number>();
  const inc = (m: Map<number, number>, k: number) => m.set(k, (m.get(k) ?? 0) + 1);
  for (let i = 0; i < labels.length; i++) {
    inc(support, labels[i]);
    inc(predicted, pred[i]);
    if (labels[i] === pred[i]) inc(tp, labels[i]);
  }
  const ratio = (a: number, b: number) => (b > 0 ? a / b : 0);
  const per = classes.map((k) => {
    const t = tp.get(k) ?? 0;
    const p = ratio(t, predicted.get(k) ?? 0);
    const r = ratio(t, support.get(k) ?? 0);
    return { p, r, f: ratio(2 * p * r, p + r), w: support.get(k) ?? 0 };
  });
  const totalSupport = per.reduce((a, x) => a + x.w, 0);
  const avg = (pick: (x: (typeof per)[number]) => number): Averages => ({
    macro: per.length > 0 ? per.reduce((a, x) => a + pick(x), 0) / per.length : 0,
    weighted: ratio(
      per.reduce((a, x) => a + pick(x) * x.w, 0),
      totalSupport,
    ),
  });
  return { precision: avg((x) => x.p), recall: avg((x) => x.r), f1: avg((x) => x.f) };
}

/** Test accuracy of each class 0..nclass-1 in percent; NaN for a class without test images (as RealMix). */
export function perClassAccuracy(labels: ArrayLike<number>, pred: ArrayLike<number>, nclass: number): number[] {
  const total = new Array(nclass).fill(0);
  const correct = new Array(nclass).fill(0);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] < 0 || labels[i] >= nclass) continue;
    total[labels[i]]++;
    if (pred[i] === labels[i]) correct[labels[i]]++;
  }
  return total.map((t, k) => (t > 0 ? (100 * correct[k]) / t : NaN));
}

/** Largest class probability of each row. */
export function maxProbabilities(probs: ArrayLike<number>, nclass: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < probs.length / nclass; i++) {
    let m = -Infinity;
    for (let c = 0; c < nclass; c++) m = Math.max(m, probs[i * nclass + c]);
    out.push(m);
  }
  return out;
}

export interface Evaluation {
  train: number;
  valid: number;
  test: number;
  /** Every other value, by its RealMix tag (losses/val_loss, f1_score/macro, ..., ood_examples/1, accuracy_test/<class>). */
  scalars: Record<string, number>;
  /** Top probability of the first (up to) ten test images. */
  ood: number[];
}

/** Evaluates a forward function (the EMA weights in inference mode) on a run's data. */
export async function evaluate(
  data: Pick<TrainingData, 'labeled' | 'valid' | 'test' | 'nclass'>,
  forward: (x: tf.Tensor4D) => tf.Tensor2D,
  batch: number,
  classNames?: string[],
): Promise<Evaluation> {
  const predict = async (set: ImageSet) => {
    const { logits, nclass } = await predictLogits(set, forward, batch);
    return { logits, nclass, pred: argmaxRows(logits, nclass) };
  };
  const train = await predict(data.labeled);
  const valid = await predict(data.valid);
  const test = await predict(data.test);
  const scalars: Record<string, number> = {};
  if (data.valid.count > 0) scalars['losses/val_loss'] = meanCrossEntropy(valid.logits, valid.nclass, data.valid.labels);
  if (data.test.count > 0) {
    const prf = precisionRecallF1(data.test.labels, test.pred);
    for (const [name, v] of [['precision', prf.precision], ['recall', prf.recall], ['f1_score', prf.f1]] as const) {
      scalars[`${name}/macro`] = v.macro;
      scalars[`${name}/weighted`] = v.weighted;
    }
  }
  const firstTen = Math.min(10, data.test.count);
  const ood = firstTen > 0 ? maxProbabilities(softmaxRows(test.logits.subarray(0, firstTen * test.nclass), test.nclass).probs, test.nclass) : [];
  ood.forEach((p, i) => (scalars[`ood_examples/${i + 1}`] = p));
  if (classNames) {
    perClassAccuracy(data.test.labels, test.pred, data.nclass).forEach((a, k) => (scalars[`accuracy_test/${classNames[k] ?? k}`] = a));
  }
  return {
    train: accuracyPercent(train.pred, data.labeled.labels),
    valid: accuracyPercent(valid.pred, data.valid.labels),
    test: accuracyPercent(test.pred, data.test.labels),
    scalars,
    ood,
  };
}
