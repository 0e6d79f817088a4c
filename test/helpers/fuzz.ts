import * as fs from 'fs';
import * as path from 'path';
import * as vm from 'vm';
import { maskedCrc32c } from '../../src/data/crc32c';
import { UserError } from '../../src/errors';
import { RandomState } from '../../src/random';
import { concatArrays } from '../../src/util/typed-arrays';

/**
 * A small seeded fuzzer for the parsers. Inputs are mutations of valid files (truncation at every
 * length, bit flips, byte substitutions, inserted and deleted bytes, huge length fields, spliced
 * and repeated chunks) and pure random bytes. Each input must end in a clean error (a UserError,
 * one line) or a result the caller checks, within a time bound and without the process growing
 * by more than a memory bound: never another exception, a hang or a huge allocation.
 */

export interface FuzzInput {
  bytes: Uint8Array;
  /** How the input was made, for the failure report. */
  how: string;
}

/** Values that make length fields and counts huge, negative or off by one. */
const HUGE_LE64: bigint[] = [1n << 60n, (1n << 64n) - 1n, 1n << 63n, (1n << 32n) - 1n, 1n << 32n, 1n << 31n, (1n << 30n) + 1n, 0n];
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x20, 0x0a];

function hugeField(rng: RandomState, out: Uint8Array, at: number): string {
  const v = HUGE_LE64[rng.randint(HUGE_LE64.length)];
  const width = [2, 4, 8][rng.randint(3)];
  const bigEndian = rng.randint(2) === 1;
  for (let k = 0; k < width && at + k < out.length; k++) {
    const shift = BigInt(8 * (bigEndian ? width - 1 - k : k));
    out[at + k] = Number((v >> shift) & 0xffn);
  }
  return `huge ${width}-byte ${bigEndian ? 'BE' : 'LE'} ${v} at ${at}`;
}

/** A protobuf varint of a huge or a small negative value (ten bytes of two's complement), for length fields. */
function hugeVarint(rng: RandomState): Uint8Array {
  let v = rng.randint(2) === 1 ? HUGE_LE64[rng.randint(HUGE_LE64.length)] : (1n << 64n) - BigInt(1 + rng.randint(40));
  const out: number[] = [];
  do {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? b | 0x80 : b);
  } while (v > 0n);
  return Uint8Array.from(out);
}

function randomBytes(rng: RandomState, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.randint(256);
  return out;
}

/** One random mutation of `input` (a copy); `pool` supplies chunks to splice in. */
export function mutate(rng: RandomState, input: Uint8Array, pool: Uint8Array[]): FuzzInput {
  // a plain copy: Buffer's slice() shares memory, and a mutation must never reach a seed
  const src = new Uint8Array(input);
  const n = src.length;
  const pos = (extra = 0): number => rng.randint(Math.max(1, n + extra));
  switch (rng.randint(9)) {
    case 0: {
      const out = src.slice();
      const flips = 1 + rng.randint(4);
      for (let k = 0; k < flips && n > 0; k++) out[pos()] ^= 1 << rng.randint(8);
      return { bytes: out, how: `${flips} bit flips` };
    }
    case 1: {
      const out = src.slice();
      const at = pos();
      if (n > 0) out[at] = rng.randint(2) ? INTERESTING_BYTES[rng.randint(INTERESTING_BYTES.length)] : rng.randint(256);
      return { bytes: out, how: `byte at ${at} replaced` };
    }
    case 2: {
      const at = pos(1);
      const ins = randomBytes(rng, 1 + rng.randint(16));
      return { bytes: concatArrays(Uint8Array, [src.subarray(0, at), ins, src.subarray(at)]), how: `${ins.length} bytes inserted at ${at}` };
    }
    case 3: {
      const at = pos();
      const len = 1 + rng.randint(16);
      return { bytes: concatArrays(Uint8Array, [src.subarray(0, at), src.subarray(at + len)]), how: `${len} bytes deleted at ${at}` };
    }
    case 4: {
      const out = src.slice();
      const at = pos();
      return { bytes: out, how: hugeField(rng, out, at) };
    }
    case 5: {
      const at = pos(1);
      return { bytes: concatArrays(Uint8Array, [src.subarray(0, at), hugeVarint(rng), src.subarray(at)]), how: `huge varint inserted at ${at}` };
    }
    case 6: {
      const other = pool[rng.randint(pool.length)];
      const from = rng.randint(Math.max(1, other.length));
      const chunk = other.subarray(from, from + 1 + rng.randint(64));
      const at = pos(1);
      return { bytes: concatArrays(Uint8Array, [src.subarray(0, at), chunk, src.subarray(at)]), how: `${chunk.length}-byte chunk spliced in at ${at}` };
    }
    case 7: {
      const at = pos();
      const chunk = src.subarray(at, at + 1 + rng.randint(8));
      const times = 2 + rng.randint(200);
      const parts: Uint8Array[] = [src.subarray(0, at)];
      for (let k = 0; k < times; k++) parts.push(chunk);
      parts.push(src.subarray(at));
      return { bytes: concatArrays(Uint8Array, parts), how: `${chunk.length} bytes at ${at} repeated ${times} times` };
    }
    default: {
      const at = pos();
      return { bytes: src.slice(0, at), how: `truncated to ${at} bytes` };
    }
  }
}

export interface InputPlan {
  /** Valid files; each is fed as is, then cut at every length (up to `maxTruncations` per seed). */
  seeds: Uint8Array[];
  /** Random mutations (one to three stacked) of random seeds. */
  mutations: number;
  /** Pure random inputs, lengths 0..randomMaxBytes. */
  random: number;
  randomMaxBytes?: number;
  maxTruncations?: number;
  /**
   * Applied to some mutations: re-frames or re-checksums so that the damage gets past outer
   * checksums to the parser inside (TFRecord CRCs, PNG chunk CRCs).
   */
  repair?: (bytes: Uint8Array) => Uint8Array;
  seed?: number;
}

export function* fuzzInputs(plan: InputPlan): Generator<FuzzInput> {
  const rng = new RandomState(plan.seed ?? 1);
  const maxTrunc = plan.maxTruncations ?? 2048;
  for (const [s, seed] of plan.seeds.entries()) {
    yield { bytes: seed, how: `seed ${s} as is` };
    const step = Math.max(1, Math.ceil(seed.length / maxTrunc));
    for (let len = 0; len < seed.length; len += step) yield { bytes: seed.subarray(0, len), how: `seed ${s} truncated to ${len} bytes` };
  }
  for (let m = 0; m < plan.mutations; m++) {
    const s = rng.randint(plan.seeds.length);
    let input: FuzzInput = { bytes: plan.seeds[s], how: `seed ${s}` };
    const stacked = 1 + rng.randint(3);
    const hows: string[] = [];
    for (let k = 0; k < stacked; k++) {
      input = mutate(rng, input.bytes, plan.seeds);
      hows.push(input.how);
    }
    let how = `seed ${s}: ${hows.join(', ')}`;
    let bytes = input.bytes;
    if (plan.repair && rng.randint(2) === 1) {
      bytes = plan.repair(bytes);
      how += ', repaired';
    }
    yield { bytes, how };
  }
  const maxLen = plan.randomMaxBytes ?? 512;
  for (let r = 0; r < plan.random; r++) yield { bytes: randomBytes(rng, rng.randint(maxLen + 1)), how: 'random bytes' };
}

export interface FuzzStats {
  inputs: number;
  ok: number;
  rejected: number;
  slowestMs: number;
  failures: string[];
}

export interface FuzzOptions<T> {
  /** Called on each result; throw (e.g. a failed expect) if it is wrong. */
  check?: (result: T, input: FuzzInput) => void;
  /** Called on each UserError; throw if it is not a proper one (e.g. does not name the file). */
  checkError?: (error: UserError, input: FuzzInput) => void;
  /** Per-input time bound. */
  timeoutMs?: number;
  /** Largest growth of the process's resident memory over the whole run. */
  maxRssGrowthBytes?: number;
  /**
   * Largest Buffer allocation (Buffer.alloc, allocUnsafe, allocUnsafeSlow) one input may cause,
   * as a function of its size: a length field must be checked against the bytes present before
   * anything is allocated for it. Default: the input's size plus 1 MiB (a read-ahead chunk).
   */
  maxAllocBytes?: (input: FuzzInput) => number;
}

type AllocFn = (size: number, ...rest: never[]) => Buffer;

/** Records the largest Buffer allocation requested while `fn` runs. */
async function trackingAllocations<R>(fn: (largest: () => number, reset: () => void) => Promise<R>): Promise<R> {
  const names = ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const;
  const originals = names.map((n) => Buffer[n] as unknown as AllocFn);
  let largest = 0;
  names.forEach((n, k) => {
    (Buffer as unknown as Record<string, AllocFn>)[n] = (size: number, ...rest: never[]) => {
      if (size > largest) largest = size;
      return originals[k](size, ...rest);
    };
  });
  try {
    return await fn(() => largest, () => (largest = 0));
  } finally {
    names.forEach((n, k) => ((Buffer as unknown as Record<string, AllocFn>)[n] = originals[k]));
  }
}

function describeInput(input: FuzzInput): string {
  const b = Buffer.from(input.bytes.buffer, input.bytes.byteOffset, input.bytes.byteLength);
  return `${input.how} (${b.length} bytes: ${b.subarray(0, 48).toString('hex')}${b.length > 48 ? '…' : ''})`;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms (a hang)`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs `parse` on every input and returns what happened; `failures` lists each input that ended
 * in anything but a clean UserError or a result that passed `check` (or took too long).
 */
export async function runFuzz<T>(inputs: Iterable<FuzzInput>, parse: (input: FuzzInput) => T | Promise<T>, opts: FuzzOptions<T> = {}): Promise<FuzzStats> {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const maxRss = process.memoryUsage.rss() + (opts.maxRssGrowthBytes ?? 512 * 2 ** 20);
  const stats: FuzzStats = { inputs: 0, ok: 0, rejected: 0, slowestMs: 0, failures: [] };
  const fail = (input: FuzzInput, why: string): void => {
    if (stats.failures.length < 10) stats.failures.push(`${describeInput(input)}: ${why}`);
  };
  // A synchronous hang would block jest's own timeout for good: each parse runs under vm's
  // watchdog, which stops whatever JavaScript is running when the time is up.
  const context = vm.createContext({ run: (): T | Promise<T> => undefined as never });
  const call = new vm.Script('run()');
  const one = async (input: FuzzInput): Promise<void> => {
    const t0 = performance.now();
    let result: T;
    try {
      context.run = () => parse(input);
      let r: T | Promise<T>;
      try {
        r = call.runInContext(context, { timeout: timeoutMs }) as T | Promise<T>;
      } catch (e) {
        if ((e as { code?: string })?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw new Error(`no answer within ${timeoutMs} ms (a hang)`);
        throw e;
      }
      result = r instanceof Promise ? await withTimeout(r, timeoutMs) : r;
    } catch (e) {
      const ms = performance.now() - t0;
      stats.slowestMs = Math.max(stats.slowestMs, ms);
      if (!(e instanceof UserError)) {
        fail(input, `threw ${(e as Error)?.constructor?.name ?? typeof e}: ${(e as Error)?.message ?? String(e)}`);
        return;
      }
      if (e.message.includes('\n')) fail(input, `error is not one line: ${JSON.stringify(e.message)}`);
      if (ms > timeoutMs) fail(input, `took ${ms.toFixed(0)} ms`);
      try {
        opts.checkError?.(e, input);
        stats.rejected++;
      } catch (bad) {
        fail(input, `bad error "${e.message}": ${(bad as Error).message}`);
      }
      return;
    }
    const ms = performance.now() - t0;
    stats.slowestMs = Math.max(stats.slowestMs, ms);
    if (ms > timeoutMs) fail(input, `took ${ms.toFixed(0)} ms`);
    try {
      opts.check?.(result, input);
      stats.ok++;
    } catch (bad) {
      fail(input, `wrong result: ${(bad as Error).message}`);
    }
  };
  const maxAlloc = opts.maxAllocBytes ?? ((input: FuzzInput) => input.bytes.length + 2 ** 20);
  await trackingAllocations(async (largest, reset) => {
    for (const input of inputs) {
      stats.inputs++;
      reset();
      await one(input);
      if (largest() > maxAlloc(input)) fail(input, `allocated a ${largest()}-byte buffer`);
      if (process.memoryUsage.rss() > maxRss) {
        fail(input, `resident memory grew past ${(maxRss / 2 ** 20).toFixed(0)} MiB`);
        break;
      }
    }
  });
  return stats;
}

/** Fails the test with the first failures, and shows how many inputs of which kind ran. */
export function expectClean(name: string, stats: FuzzStats, minInputs: number): void {
  if (stats.failures.length > 0) {
    throw new Error(`${name}: ${stats.failures.length}+ of ${stats.inputs} inputs misbehaved:\n${stats.failures.join('\n')}`);
  }
  if (stats.inputs < minInputs) throw new Error(`${name}: only ${stats.inputs} inputs ran, expected at least ${minInputs}`);
  // eslint-disable-next-line no-console
  if (process.env.FUZZ_REPORT) console.log(`${name}: ${stats.inputs} inputs, ${stats.ok} parsed, ${stats.rejected} rejected cleanly, slowest ${stats.slowestMs.toFixed(1)} ms`);
}

let scratch = 0;

/**
 * Runs `fn` on `bytes` written to a fresh file in `dir` (`<n><ext>`), removed afterwards. A fresh
 * name each time: rewriting one file in place costs ext4 a flush per input, ten times the cost.
 */
export function onDisk<R>(dir: string, ext: string, bytes: Uint8Array, fn: (file: string) => R): R {
  const file = path.join(dir, `${scratch++}${ext}`);
  fs.writeFileSync(file, bytes);
  try {
    return fn(file);
  } finally {
    fs.rmSync(file, { force: true });
  }
}

/** Fixes every TFRecord header and data CRC it can reach, so that damage gets past the checksums. */
export function repairFraming(bytes: Uint8Array): Uint8Array {
  const out = Buffer.from(bytes);
  let pos = 0;
  while (pos + 12 <= out.length) {
    out.writeUInt32LE(maskedCrc32c(out, pos, pos + 8), pos + 8);
    const len = out.readBigUInt64LE(pos);
    if (len > BigInt(out.length)) break;
    const end = pos + 12 + Number(len) + 4;
    if (end > out.length) break;
    out.writeUInt32LE(maskedCrc32c(out, pos + 12, end - 4), end - 4);
    pos = end;
  }
  return out;
}
