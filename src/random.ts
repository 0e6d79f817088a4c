/**
 * numpy's legacy `RandomState` (what `np.random.seed` / `np.random.*` use), reproduced bit for bit
 * so that a split or an augmentation drawn here matches the Python originals for the same seed.
 * Verified against vectors produced by numpy (test/fixtures/numpy-random.json and the shared
 * shuffle fixture).
 *
 * Draws that go through log/pow/exp (standardNormal, normal, beta) can differ from numpy in the
 * last bit where V8's libm and the C library round differently; the uniform, integer and shuffle
 * draws are exact.
 */

/** What the training loop and the data code need from a generator; any seeded source will do. */
export interface Rng {
  /** Uniform double in [0, 1) with 53 random bits. */
  randomSample(): number;
  /** Uniform double in [low, high). */
  uniform(low?: number, high?: number): number;
  /** Uniform integer in [low, high), or [0, low) when high is omitted. */
  randint(low: number, high?: number): number;
  standardNormal(): number;
  beta(a: number, b: number): number;
  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(array: MutableArrayLike<T>): void;
  /** A shuffled 0..n-1. */
  permutation(n: number): number[];
}

export interface MutableArrayLike<T> {
  readonly length: number;
  [index: number]: T;
}

/** Plain JSON-serialisable generator state; the fields mirror numpy's get_state() tuple. */
export interface RandomStateSnapshot {
  algorithm: 'MT19937';
  key: number[];
  pos: number;
  hasGauss: boolean;
  gauss: number;
}

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const TWO_32 = 4294967296;
const MAX_SEED = TWO_32 - 1;

/** Smallest all-ones mask covering `max` (max < 2^32), as numpy's bounded draws use. */
function mask32(max: number): number {
  let m = max;
  m |= m >>> 1;
  m |= m >>> 2;
  m |= m >>> 4;
  m |= m >>> 8;
  m |= m >>> 16;
  return m >>> 0;
}

export class RandomState implements Rng {
  private readonly key = new Uint32Array(N);
  private pos = N;
  private hasGauss = false;
  private gauss = 0;

  constructor(seed = 0) {
    this.seed(seed);
  }

  static fromState(state: RandomStateSnapshot): RandomState {
    const r = new RandomState(0);
    r.setState(state);
    return r;
  }

  /**
   * `np.random.seed(int)`: legacy seeding of an integer is MT19937's init_genrand (not
   * init_by_array, which numpy uses only for array seeds), and it drops the cached gaussian.
   */
  seed(seed: number): void {
    if (!Number.isInteger(seed) || seed < 0 || seed > MAX_SEED) {
      throw new RangeError(`seed must be an integer between 0 and 2**32 - 1, got ${seed}`);
    }
    const k = this.key;
    k[0] = seed;
    for (let i = 1; i < N; i++) {
      const prev = k[i - 1];
      // Math.imul is the exact product modulo 2^32, which is what the C code's uint32 overflow gives.
      k[i] = (Math.imul(1812433253, (prev ^ (prev >>> 30)) >>> 0) + i) >>> 0;
    }
    this.pos = N;
    this.hasGauss = false;
    this.gauss = 0;
  }

  getState(): RandomStateSnapshot {
    return {
      algorithm: 'MT19937',
      key: Array.from(this.key),
      pos: this.pos,
      hasGauss: this.hasGauss,
      gauss: this.gauss,
    };
  }

  setState(state: RandomStateSnapshot): void {
    // States come back from checkpoint files, so a damaged one must fail here, not draw garbage.
    if (state === null || typeof state !== 'object' || state.algorithm !== 'MT19937') {
      throw new Error('generator state is not an MT19937 state');
    }
    const { key, pos, hasGauss, gauss } = state;
    if (!Array.isArray(key) || key.length !== N || !key.every((v) => Number.isInteger(v) && v >= 0 && v <= MAX_SEED)) {
      throw new Error(`generator state key must be ${N} unsigned 32-bit integers`);
    }
    if (!Number.isInteger(pos) || pos < 0 || pos > N) throw new Error(`generator state pos must be 0..${N}, got ${pos}`);
    if (typeof hasGauss !== 'boolean' || typeof gauss !== 'number' || !Number.isFinite(gauss)) {
      throw new Error('generator state hasGauss/gauss are invalid');
    }
    this.key.set(key);
    this.pos = pos;
    this.hasGauss = hasGauss;
    this.gauss = hasGauss ? gauss : 0;
  }

  private twist(): void {
    const k = this.key;
    let i = 0;
    let y: number;
    for (; i < N - M; i++) {
      y = (k[i] & UPPER_MASK) | (k[i + 1] & LOWER_MASK);
      k[i] = k[i + M] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    for (; i < N - 1; i++) {
      y = (k[i] & UPPER_MASK) | (k[i + 1] & LOWER_MASK);
      k[i] = k[i + (M - N)] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    }
    y = (k[N - 1] & UPPER_MASK) | (k[0] & LOWER_MASK);
    k[N - 1] = k[M - 1] ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0);
    this.pos = 0;
  }

  /** One tempered 32-bit output. */
  nextUint32(): number {
    if (this.pos >= N) this.twist();
    let y = this.key[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  randomSample(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  uniform(low = 0, high = 1): number {
    const range = high - low;
    if (!Number.isFinite(range)) throw new RangeError('uniform: range exceeds valid bounds');
    return low + range * this.randomSample();
  }

  /** numpy's random_interval: masked rejection on 32-bit outputs, used by shuffle. */
  private interval(max: number): number {
    if (max === 0) return 0;
    const mask = mask32(max);
    let v: number;
    do v = (this.nextUint32() & mask) >>> 0;
    while (v > max);
    return v;
  }

  /**
   * Legacy `randint` for the default int64 dtype: masked rejection sampling, on 32-bit outputs when
   * the range fits 32 bits, else on 64-bit outputs (high word drawn first). Limited to ranges of at
   * most 2^53 so that results stay exact JS integers.
   */
  randint(low: number, high?: number): number {
    if (high === undefined) {
      high = low;
      low = 0;
    }
    if (!Number.isInteger(low) || !Number.isInteger(high) || Math.abs(low) > 2 ** 53 || Math.abs(high) > 2 ** 53) {
      throw new RangeError(`randint bounds must be integers within ±2^53, got ${low}, ${high}`);
    }
    if (low >= high) throw new RangeError(`randint: low >= high (${low} >= ${high})`);
    const span = high - low;
    // A span just past 2^53 can round down to 2^53, hence the exact check at that boundary.
    if (span > 2 ** 53 || (span === 2 ** 53 && BigInt(high) - BigInt(low) !== 2n ** 53n)) {
      throw new RangeError('randint: range wider than 2^53');
    }
    const rng = span - 1;
    if (rng === 0) return low;
    if (rng < TWO_32) {
      if (rng === TWO_32 - 1) return low + this.nextUint32();
      return low + this.interval(rng);
    }
    // Both words of the mask beyond bit 32: the low word is all ones, the high word masks the rest.
    const maskHi = mask32(Math.floor(rng / TWO_32));
    let v: number;
    do {
      const hi = this.nextUint32() & maskHi;
      const lo = this.nextUint32();
      v = hi * TWO_32 + lo;
    } while (v > rng);
    return low + v;
  }

  /** Legacy polar Box-Muller: draws pairs and keeps the second value for the next call. */
  standardNormal(): number {
    if (this.hasGauss) {
      const g = this.gauss;
      this.hasGauss = false;
      this.gauss = 0;
      return g;
    }
    let x1: number;
    let x2: number;
    let r2: number;
    do {
      x1 = 2 * this.randomSample() - 1;
      x2 = 2 * this.randomSample() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.gauss = f * x1;
    this.hasGauss = true;
    return f * x2;
  }

  normal(loc = 0, scale = 1): number {
    if (!(scale >= 0)) throw new RangeError(`normal: scale must be >= 0, got ${scale}`);
    return loc + scale * this.standardNormal();
  }

  standardExponential(): number {
    // 1 - U because U can be 0 but never 1.
    return -Math.log(1 - this.randomSample());
  }

  /** Legacy standard_gamma: Marsaglia-Tsang on the legacy gaussian for shape > 1. */
  standardGamma(shape: number): number {
    if (!(shape >= 0)) throw new RangeError(`standardGamma: shape must be >= 0, got ${shape}`);
    if (shape === 1) return this.standardExponential();
    if (shape === 0) return 0;
    if (shape < 1) {
      for (;;) {
        const u = this.randomSample();
        const v = this.standardExponential();
        if (u <= 1 - shape) {
          const x = Math.pow(u, 1 / shape);
          if (x <= v) return x;
        } else {
          const y = -Math.log((1 - u) / shape);
          const x = Math.pow(1 - shape + shape * y, 1 / shape);
          if (x <= v + y) return x;
        }
      }
    }
    const b = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * b);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.standardNormal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = this.randomSample();
      if (u < 1 - 0.0331 * (x * x) * (x * x)) return b * v;
      if (Math.log(u) < 0.5 * x * x + b * (1 - v + Math.log(v))) return b * v;
    }
  }

  /** Legacy beta: Johnk's algorithm when both a, b <= 1, else a ratio of gammas. */
  beta(a: number, b: number): number {
    if (!(a > 0) || !(b > 0)) throw new RangeError(`beta: a and b must be > 0, got ${a}, ${b}`);
    if (a <= 1 && b <= 1) {
      for (;;) {
        const u = this.randomSample();
        const v = this.randomSample();
        const x = Math.pow(u, 1 / a);
        const y = Math.pow(v, 1 / b);
        if (x + y <= 1) {
          if (x + y > 0) return x / (x + y);
          // Both powers underflowed: finish in log space, as numpy does.
          let logX = Math.log(u) / a;
          let logY = Math.log(v) / b;
          const logM = logX > logY ? logX : logY;
          logX -= logM;
          logY -= logM;
          return Math.exp(logX - Math.log(Math.exp(logX) + Math.exp(logY)));
        }
      }
    }
    const ga = this.standardGamma(a);
    const gb = this.standardGamma(b);
    return ga / (ga + gb);
  }

  /** `np.random.shuffle`: from the end, swapping i with a bounded draw in [0, i]. */
  shuffle<T>(array: MutableArrayLike<T>): void {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.interval(i);
      const t = array[i];
      array[i] = array[j];
      array[j] = t;
    }
  }

  permutation(n: number): number[] {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`permutation: n must be a non-negative integer, got ${n}`);
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = i;
    this.shuffle(out);
    return out;
  }
}
