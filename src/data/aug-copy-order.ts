import { RandomState } from '../random';

/**
 * Which record goes where in an aug-copy file, and the seed each record is augmented with.
 *
 * RealMix's make_aug_copy repeats the unlabelled set `copies` times (copy-major: all images of copy
 * 0, then of copy 1, ...) and shuffles the whole list with Python's `random.seed(1);
 * random.shuffle(...)`. `shuffledOrder(seed, n)` is that permutation bit for bit (Python's
 * MT19937 seeded by init_by_array, Fisher-Yates from the end with `_randbelow` by rejection on
 * `getrandbits`), so with the default seed 1 record k of our file is the same copy of the same
 * image as in the original's file. Only the permutation is held (4 bytes a record); records are
 * made when their turn comes.
 */

const N = 624;

/** Python's `random.Random(seed)` generator state for a non-negative integer seed. */
function pythonSeedKey(seed: number): number[] {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  let n = Math.abs(seed);
  // the integer's 32-bit words, least significant first; 0 is one zero word
  const words: number[] = [];
  do {
    words.push(n % 2 ** 32);
    n = Math.floor(n / 2 ** 32);
  } while (n > 0);
  const mt = new Uint32Array(N);
  mt[0] = 19650218;
  for (let i = 1; i < N; i++) mt[i] = (Math.imul(1812433253, (mt[i - 1] ^ (mt[i - 1] >>> 30)) >>> 0) + i) >>> 0;
  let i = 1;
  let j = 0;
  for (let k = Math.max(N, words.length); k > 0; k--) {
    mt[i] = ((mt[i] ^ Math.imul((mt[i - 1] ^ (mt[i - 1] >>> 30)) >>> 0, 1664525)) + words[j] + j) >>> 0;
    i++;
    j++;
    if (i >= N) {
      mt[0] = mt[N - 1];
      i = 1;
    }
    if (j >= words.length) j = 0;
  }
  for (let k = N - 1; k > 0; k--) {
    mt[i] = ((mt[i] ^ Math.imul((mt[i - 1] ^ (mt[i - 1] >>> 30)) >>> 0, 1566083941)) - i) >>> 0;
    i++;
    if (i >= N) {
      mt[0] = mt[N - 1];
      i = 1;
    }
  }
  mt[0] = 0x80000000;
  return Array.from(mt);
}

/** Python's `random.seed(seed); x = list(range(n)); random.shuffle(x)`, as an Int32Array. */
export function shuffledOrder(seed: number, n: number): Int32Array {
  if (!Number.isInteger(n) || n < 0 || n > 2 ** 31 - 1) throw new RangeError(`cannot order ${n} records`);
  const mt = RandomState.fromState({ algorithm: 'MT19937', key: pythonSeedKey(seed), pos: N, hasGauss: false, gauss: 0 });
  const x = new Int32Array(n);
  for (let i = 0; i < n; i++) x[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const bound = i + 1;
    const k = 32 - Math.clz32(bound); // bound.bit_length()
    let r: number;
    do r = mt.nextUint32() >>> (32 - k);
    while (r >= bound);
    const t = x[i];
    x[i] = x[r];
    x[r] = t;
  }
  return x;
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The seed of one augmented record: a hash of (run seed, copy, image), so a record's augmentation
 * does not depend on when, or in which worker, it is made.
 */
export function recordSeed(seed: number, copy: number, image: number): number {
  let h = fmix32((seed >>> 0) ^ 0x9e3779b9);
  h = fmix32((h ^ Math.imul(copy + 1, 0x27d4eb2f)) >>> 0);
  h = fmix32((h ^ Math.imul(image + 1, 0x165667b1)) >>> 0);
  return fmix32((h ^ Math.floor(seed / 2 ** 32)) >>> 0);
}
