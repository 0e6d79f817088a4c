import { UserError } from '../errors';
import { RandomState } from '../random';

/**
 * Labelled/unlabelled split selection of the reference create_split (Google MixMatch, with the
 * RealMix --custom and --class_balance variants), on labels alone so that it is testable without
 * any files. The same seed gives the same positions as the Python script, because the per-class
 * shuffles use numpy's legacy generator and every score is computed in the same float64 order.
 */

export interface SplitOptions {
  /** 0 keeps each class in file order (no shuffle), as the reference does. */
  seed: number;
  /** Number of labelled records. */
  size: number;
  /** STL-10: its unlabelled records all carry label 0, so class frequencies mean nothing. */
  allWeightsOne?: boolean;
  /** STL-10 at size 1000: the published fold (one line of stl10_fold_indices.txt) replaces the pick. */
  foldIndices?: number[];
  /** RealMix --custom: only the first labelSize records are truly labelled and may be picked. */
  labelSize?: number;
  /**
   * Records from this position on come from a separate unlabelled file (create-datasets custom's
   * `<name>-unlabel.tfrecord`): never labelled, and not counted in the class weights. Their labels
   * are placeholders: one of the classes joins that class's queue, as the original's placeholder 0
   * does when the images share the train file; any other value (-1, 255) has no class, so those
   * records are written after all others and never reach the validation head.
   */
  unlabelledFrom?: number;
  /** RealMix --class_balance: strict round-robin over classes instead of the weighted pick. */
  classBalance?: boolean;
}

export interface SplitSelection {
  /** Labelled positions, ascending. */
  label: number[];
  /** Unlabelled positions in the order they are written (class-interleaved). */
  unlabel: number[];
  nclass: number;
  /** Labelled records per class. */
  labelCounts: number[];
}

const MAX_SEED = 2 ** 32 - 1;

export function selectSplit(labels: ArrayLike<number>, opts: SplitOptions): SplitSelection {
  const n = labels.length;
  validateSplitOptions(opts);
  const head = opts.unlabelledFrom === undefined ? n : opts.unlabelledFrom;
  if (!Number.isInteger(head) || head < 0 || head > n) throw new Error(`unlabelledFrom ${opts.unlabelledFrom} is not a position of the ${n} records`);
  if (opts.labelSize !== undefined && opts.unlabelledFrom !== undefined && opts.labelSize > head) {
    throw new UserError(`--label-size ${opts.labelSize} is more than the ${head} records before the unlabelled file; pass at most ${head}`);
  }
  const eligible = Math.min(opts.labelSize ?? head, n);
  if (opts.size > eligible) {
    const where =
      opts.labelSize !== undefined
        ? `only ${eligible} records are eligible (--label-size ${opts.labelSize})`
        : opts.unlabelledFrom !== undefined
          ? `the labelled input has ${head} records (the unlabelled file's records are never labelled)`
          : `the input has ${n} records`;
    throw new UserError(`cannot pick ${opts.size} labelled records: ${where}; pass a smaller --size`);
  }

  const nclass = countClasses(labels, eligible);
  const classPositions: number[][] = Array.from({ length: nclass }, () => []);
  for (let pos = 0; pos < eligible; pos++) classPositions[labels[pos]].push(pos);
  for (let pos = eligible; pos < head; pos++) {
    const y = labels[pos];
    if (!Number.isInteger(y) || y < 0 || y >= nclass) {
      throw new UserError(
        `record ${pos} has label ${y}, outside the classes 0..${nclass - 1} of the first ${eligible} records`,
      );
    }
  }

  const weights = new Float64Array(nclass);
  const maxCount = Math.max(...classPositions.map((p) => p.length));
  for (let c = 0; c < nclass; c++) weights[c] = opts.allWeightsOne ? 1 : classPositions[c].length / maxCount;

  if (opts.seed !== 0) {
    const rng = new RandomState(opts.seed);
    for (const positions of classPositions) rng.shuffle(positions);
  }

  const picked = opts.classBalance
    ? pickRoundRobin(classPositions, opts.size)
    : pickWeighted(classPositions, weights, opts.size);
  const label = opts.foldIndices ? foldLabels(opts.foldIndices, n) : picked.sort((a, b) => a - b);

  const isLabel = new Uint8Array(n);
  for (const pos of label) isLabel[pos] = 1;
  const labelCounts = new Array<number>(nclass).fill(0);
  for (const pos of label) labelCounts[labels[pos]]++;

  return { label, unlabel: interleaveUnlabelled(labels, isLabel, weights, head), nclass, labelCounts };
}

/** The checks selectSplit makes on its options, for callers that want them before reading any data. */
export function validateSplitOptions(opts: Pick<SplitOptions, 'seed' | 'size' | 'labelSize'>): void {
  if (!Number.isInteger(opts.size) || opts.size <= 0) {
    throw new UserError(`--size must be a positive integer (the number of labelled records), got ${opts.size}`);
  }
  if (!Number.isInteger(opts.seed) || opts.seed < 0 || opts.seed > MAX_SEED) {
    throw new UserError(`--seed must be an integer from 0 to ${MAX_SEED} (0: no shuffle), got ${opts.seed}`);
  }
  if (opts.labelSize !== undefined && (!Number.isInteger(opts.labelSize) || opts.labelSize <= 0)) {
    throw new UserError(`--label-size must be a positive integer, got ${opts.labelSize}`);
  }
}

/** The reference asserts the labels of the eligible records are exactly 0..nclass-1. */
function countClasses(labels: ArrayLike<number>, eligible: number): number {
  const seen = new Set<number>();
  for (let pos = 0; pos < eligible; pos++) {
    const y = labels[pos];
    if (!Number.isInteger(y) || y < 0) throw new UserError(`record ${pos} has label ${y}; labels must be integers 0..nclass-1`);
    seen.add(y);
  }
  const nclass = seen.size;
  for (let c = 0; c < nclass; c++) {
    if (!seen.has(c)) {
      const found = [...seen].sort((a, b) => a - b);
      const shown = found.length > 12 ? `${found.slice(0, 12).join(', ')}, ...` : found.join(', ');
      throw new UserError(
        `the labels must be exactly 0..${nclass - 1} (one per class) but ${nclass} distinct labels were found: ${shown}`,
      );
    }
  }
  return nclass;
}

/** The class with the largest `weight - picked/max(maxPicked, 1)`, lowest index on ties (np.argmax). */
function argmaxScore(weights: Float64Array, counts: Int32Array, maxCount: number, usable?: (c: number) => boolean): number {
  const d = Math.max(maxCount, 1);
  let best = -1;
  let bestScore = -Infinity;
  for (let c = 0; c < weights.length; c++) {
    if (usable && !usable(c)) continue;
    const s = weights[c] - counts[c] / d;
    if (best < 0 || s > bestScore) {
      best = c;
      bestScore = s;
    }
  }
  return best;
}

/**
 * Greedy pick that keeps the labelled class distribution proportional to the weights. A class can
 * only run out under allWeightsOne (the reference crashes then); skipping it extends the reference
 * without changing any pick where the reference works.
 */
function pickWeighted(classPositions: number[][], weights: Float64Array, size: number): number[] {
  const counts = new Int32Array(weights.length);
  let maxCount = 0;
  const out: number[] = [];
  const notExhausted = (c: number) => counts[c] < classPositions[c].length;
  for (let i = 0; i < size; i++) {
    let c = argmaxScore(weights, counts, maxCount);
    if (!notExhausted(c)) c = argmaxScore(weights, counts, maxCount, notExhausted);
    out.push(classPositions[c][counts[c]]);
    counts[c]++;
    if (counts[c] > maxCount) maxCount = counts[c];
  }
  return out;
}

/** RealMix --class_balance: one per class in turn, skipping classes that have run out. */
function pickRoundRobin(classPositions: number[][], size: number): number[] {
  const nclass = classPositions.length;
  const counts = new Int32Array(nclass);
  const out: number[] = [];
  let c = 0;
  while (out.length < size) {
    if (counts[c] < classPositions[c].length) out.push(classPositions[c][counts[c]++]);
    c = (c + 1) % nclass;
  }
  return out;
}

function foldLabels(foldIndices: number[], n: number): number[] {
  for (const p of foldIndices) {
    if (!Number.isInteger(p) || p < 0 || p >= n) {
      throw new UserError(`fold index ${p} is not a record position (the input has ${n} records)`);
    }
  }
  return [...new Set(foldIndices)].sort((a, b) => a - b);
}

/**
 * Unlabelled write order: each record joins its class queue in file order, and after each arrival
 * the queues are drained while the best-scoring class has a record waiting, so every prefix of the
 * unlabel file (the validation set is its head) follows the class distribution. Leftovers follow,
 * class by class, and then the classless placeholders of a separate unlabelled file (positions
 * from `head` on whose label is not a class).
 */
function interleaveUnlabelled(labels: ArrayLike<number>, isLabel: Uint8Array, weights: Float64Array, head: number): number[] {
  const nclass = weights.length;
  const queues: number[][] = Array.from({ length: nclass }, () => []);
  const heads = new Int32Array(nclass);
  const written = new Int32Array(nclass);
  const classless: number[] = [];
  let maxWritten = 0;
  const out: number[] = [];
  for (let pos = 0; pos < labels.length; pos++) {
    if (isLabel[pos]) continue;
    const y = labels[pos];
    if (pos >= head && !(Number.isInteger(y) && y >= 0 && y < nclass)) {
      classless.push(pos);
      continue;
    }
    queues[y].push(pos);
    for (;;) {
      const c = argmaxScore(weights, written, maxWritten);
      if (heads[c] >= queues[c].length) break;
      out.push(queues[c][heads[c]++]);
      written[c]++;
      if (written[c] > maxWritten) maxWritten = written[c];
    }
  }
  for (let c = 0; c < nclass; c++) {
    for (let i = heads[c]; i < queues[c].length; i++) out.push(queues[c][i]);
  }
  for (const pos of classless) out.push(pos);
  return out;
}
