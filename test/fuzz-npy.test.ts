import { spawnSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeNpy, readNpy, type NpyArray } from '../src/data/npy';
import { UserError } from '../src/errors';
import { expectClean, fuzzInputs, onDisk, runFuzz, type FuzzInput } from './helpers/fuzz';

/**
 * .npy reading under damage: every input ends in a UserError naming the file, or in an array that
 * numpy itself reads identically (same dtype, shape and bytes); checked against numpy in one batch.
 */

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-fuzz-npy-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const FIX = path.join(__dirname, 'fixtures', 'npy');
const ITEMSIZE: Record<string, number> = { '<i8': 8, '<i4': 4, '|u1': 1, '<u1': 1, '<f4': 4, '<f8': 8 };

/** Format 2.0 of the same array: a four-byte header length. */
function asVersion2(v1: Buffer): Buffer {
  const len = v1.readUInt16LE(8);
  const head = Buffer.alloc(12);
  v1.copy(head, 0, 0, 6);
  head[6] = 2;
  head.writeUInt32LE(len, 8);
  return Buffer.concat([head, v1.subarray(10)]);
}

/**
 * Makes a damaged header self-consistent where it can: the length field points at the first
 * newline, and the data is cut or padded to what the header's shape and dtype say, so the
 * damage reaches the header parser and the size checks instead of failing the length check.
 */
function repairNpy(bytes: Uint8Array): Uint8Array {
  const b = Buffer.from(bytes);
  if (b.length < 12) return b;
  const start = b[6] === 1 ? 10 : 12;
  const nl = b.indexOf(0x0a, start);
  if (nl < 0) return b;
  const out = Buffer.from(b.subarray(0, nl + 1));
  if (start === 10) out.writeUInt16LE((nl + 1 - start) & 0xffff, 8);
  else out.writeUInt32LE(nl + 1 - start, 8);
  const header = out.toString('latin1', start);
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape || !(descr[1] in ITEMSIZE)) return Buffer.concat([out, b.subarray(nl + 1)]);
  const dims = shape[1].split(',').filter((s) => s.trim()).map((s) => Number(s.trim()));
  const bytesNeeded = dims.reduce((a, d) => a * d, 1) * ITEMSIZE[descr[1]];
  if (!Number.isSafeInteger(bytesNeeded) || bytesNeeded > 1 << 16) return Buffer.concat([out, b.subarray(nl + 1)]);
  const data = Buffer.alloc(bytesNeeded);
  b.copy(data, 0, nl + 1, nl + 1 + bytesNeeded);
  return Buffer.concat([out, data]);
}

const sha = (a: NpyArray): string => createHash('sha256').update(Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength)).digest('hex');

test('.npy: random and damaged files end in a UserError naming the file, or read as numpy reads them', async () => {
  const fixtures = fs.readdirSync(FIX).filter((f) => f.endsWith('.npy')).map((f) => fs.readFileSync(path.join(FIX, f)));
  const seeds: Uint8Array[] = [
    ...fixtures,
    asVersion2(fixtures[0]),
    encodeNpy(BigInt64Array.from([1n, -2n, 3n])),
    encodeNpy(new Float32Array([1.5, -2, 3, 4]), [2, 2]),
    encodeNpy(new Uint8Array(0), [0, 5]),
  ];
  const accepted: Array<{ file: string; dtype: string; shape: number[]; sha: string }> = [];
  const stats = await runFuzz(
    fuzzInputs({ seeds, mutations: 5000, random: 800, randomMaxBytes: 256, repair: repairNpy, seed: 5 }),
    (input: FuzzInput) =>
      onDisk(dir, '.npy', input.bytes, (file) => {
        try {
          return { a: readNpy(file), bytes: input.bytes };
        } catch (e) {
          if (e instanceof UserError && !e.message.startsWith(`${file}: `)) throw new Error(`error does not name the file: ${e.message}`);
          throw e;
        }
      }),
    {
      check: ({ a, bytes }) => {
        const n = a.shape.reduce((x, d) => x * d, 1);
        if (a.data.length !== n) throw new Error(`shape (${a.shape}) but ${a.data.length} values`);
        // keep a sample for numpy to judge (every accepted damaged input, up to a few hundred)
        if (accepted.length < 400) {
          const file = path.join(dir, `accepted-${accepted.length}.npy`);
          fs.writeFileSync(file, bytes);
          accepted.push({ file, dtype: a.dtype, shape: a.shape, sha: sha(a) });
        }
      },
      checkError: (e) => {
        if (e.message.length > 400) throw new Error(`error is ${e.message.length} characters long`);
      },
    },
  );
  expectClean('.npy', stats, 6000);
  expect(accepted.length).toBeGreaterThan(50);

  // numpy's verdict on everything we read
  const script = [
    'import hashlib, json, sys, numpy as np',
    'out = []',
    'for f in json.load(sys.stdin):',
    '    try:',
    '        a = np.load(f, allow_pickle=False)',
    '        out.append([str(a.dtype), list(a.shape), hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()])',
    '    except Exception as e:',
    "        out.append(['error', str(e)])",
    'print(json.dumps(out))',
  ].join('\n');
  const py = spawnSync('python3', ['-c', script], { input: JSON.stringify(accepted.map((a) => a.file)), encoding: 'utf8', maxBuffer: 1 << 24 });
  expect(py.stderr).toBe('');
  const numpy = JSON.parse(py.stdout) as Array<[string, number[] | string, string?]>;
  const disagreements = accepted
    .map((a, k) => ({ ours: [a.dtype, a.shape, a.sha], numpy: numpy[k], file: fs.readFileSync(a.file).toString('latin1').slice(0, 80) }))
    .filter((d) => JSON.stringify(d.ours) !== JSON.stringify(d.numpy));
  expect(disagreements.slice(0, 5)).toEqual([]);
});
