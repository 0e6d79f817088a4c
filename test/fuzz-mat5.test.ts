import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { MatFile } from '../src/data/mat5';
import { UserError } from '../src/errors';
import { expectClean, fuzzInputs, runFuzz, type FuzzInput } from './helpers/fuzz';

/**
 * MATLAB level-5 MAT-files under damage: opening a file and reading every numeric variable ends
 * in a UserError naming the file, or in values that scipy.io.loadmat reads identically (checked
 * in one batch). Seeds are written by scipy.io.savemat, compressed and not.
 */

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-fuzz-mat5-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function scipySeeds(): Uint8Array[] {
  const script = `
import numpy as np, scipy.io as sio, sys
d = sys.argv[1]
X = (np.arange(2 * 3 * 3 * 2) * 7 % 256).astype(np.uint8).reshape(2, 3, 3, 2)
y = np.array([[1], [10], [3]], dtype=np.float64)
sio.savemat(d + '/plain.mat', {'X': X, 'y': y})
sio.savemat(d + '/compressed.mat', {'X': X, 'y': y}, do_compression=True)
sio.savemat(d + '/mixed.mat', {'a': np.array([[1.5, -2.0]], dtype=np.float32), 'b': np.array([[7, 8, 9]], dtype=np.int16), 's': 'text', 'big': np.array([[2**40]], dtype=np.int64)})
sio.savemat(d + '/empty.mat', {'e': np.zeros((0, 3))}, do_compression=True)
`;
  const r = spawnSync('python3', ['-c', script, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`scipy could not write the seeds: ${r.stderr}`);
  return ['plain', 'compressed', 'mixed', 'empty'].map((n) => fs.readFileSync(path.join(dir, `${n}.mat`)));
}

interface Read {
  variables: Array<{ name: string; class: string; dims: number[]; values: number[] | string }>;
}

async function readAll(bytes: Uint8Array, label: string): Promise<Read> {
  const m = await MatFile.open(bytes, label);
  const variables: Read['variables'] = [];
  for (const v of m.variables) {
    let values: number[] | string;
    try {
      values = Array.from(await m.readNumbers(v.name, 1 << 20));
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      if (!e.message.startsWith(`${label}: `)) throw new Error(`error does not name the file: ${e.message}`);
      values = 'refused';
    }
    variables.push({ name: v.name, class: v.class, dims: v.dims, values });
  }
  // the streaming path must agree with the whole-array path
  for (const v of variables) {
    if (typeof v.values === 'string' || !v.values.every((x) => Number.isInteger(x) && x >= 0 && x <= 255)) continue;
    const parts: number[] = [];
    for await (const p of m.streamUint8(v.name)) parts.push(...p);
    if (JSON.stringify(parts) !== JSON.stringify(v.values)) throw new Error(`streamUint8 of '${v.name}' differs from readNumbers`);
  }
  return { variables };
}

test('MAT-files: random and damaged files end in a UserError naming the file, or read as scipy reads them', async () => {
  const seeds = scipySeeds();
  const label = 'fuzz.mat';
  const accepted: Array<{ bytes: Uint8Array; read: Read }> = [];
  const stats = await runFuzz(
    fuzzInputs({ seeds, mutations: 2600, random: 400, randomMaxBytes: 400, maxTruncations: 200, seed: 47 }),
    async (input: FuzzInput) => ({ read: await readAll(input.bytes, label), input }),
    {
      timeoutMs: 5000,
      // a compressed element may inflate up to zlib's ratio; nothing beyond
      maxAllocBytes: (input) => input.bytes.length * 1032 + 2 ** 20,
      check: ({ read, input }) => {
        for (const v of read.variables) {
          if (typeof v.values === 'string') continue;
          const n = v.dims.reduce((a, d) => a * d, 1);
          if (v.values.length !== n) throw new Error(`'${v.name}' has dims ${v.dims} but ${v.values.length} values`);
        }
        if (accepted.length < 120 && read.variables.some((v) => typeof v.values !== 'string')) accepted.push({ bytes: input.bytes, read });
      },
      checkError: (e) => {
        if (!e.message.startsWith(`${label}: `) && !e.message.startsWith(`cannot read ${label}`)) throw new Error('error does not name the file');
      },
    },
  );
  expectClean('MAT-files', stats, 3500);
  expect(accepted.length).toBeGreaterThan(30);

  // scipy's verdict on every numeric variable we read (column-major values, as we give them)
  accepted.forEach((a, k) => fs.writeFileSync(path.join(dir, `accepted-${k}.mat`), a.bytes));
  // each load in a forked child: scipy itself crashes (SIGSEGV) on some damaged files
  const script = `
import json, os, sys, numpy as np, scipy.io as sio
names = json.load(sys.stdin)
out = []
for k in range(len(names)):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        res = {}
        for n in names[k]:
            try:
                v = sio.loadmat(f'{sys.argv[1]}/accepted-{k}.mat', variable_names=[n])[n]
                res[n] = v.flatten(order='F').astype(np.float64).tolist()
            except Exception as e:
                res[n] = 'error: ' + str(e)
        os.write(w, json.dumps(res).encode())
        os._exit(0)
    os.close(w)
    data = b''
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    _, status = os.waitpid(pid, 0)
    out.append(json.loads(data) if status == 0 and data else f'scipy crashed (status {status})')
print(json.dumps(out))
`;
  // variables we read, by name: MATLAB names are ASCII identifiers, and scipy decodes others differently
  const compared = (r: Read) => r.variables.filter((v) => typeof v.values !== 'string' && v.class !== 'char' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(v.name));
  const names = accepted.map((a) => compared(a.read).map((v) => v.name));
  const py = spawnSync('python3', ['-c', script, dir], { input: JSON.stringify(names), encoding: 'utf8', maxBuffer: 1 << 26 });
  expect([py.status, py.signal, py.stderr]).toEqual([0, null, '']);
  const scipy = JSON.parse(py.stdout) as Array<Record<string, number[]> | string>;
  const disagreements: string[] = [];
  accepted.forEach((a, k) => {
    for (const v of compared(a.read)) {
      const s = scipy[k];
      const theirs = typeof s === 'string' ? s : JSON.stringify(s[v.name]);
      if (theirs !== JSON.stringify(v.values)) disagreements.push(`input ${k} '${v.name}': ours ${JSON.stringify(v.values).slice(0, 80)}, scipy ${theirs?.slice(0, 80)}`);
    }
  });
  expect(disagreements.slice(0, 5)).toEqual([]);
});
