import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { UserError } from '../src/errors';
import { MatFile } from '../src/data/mat5';
import { python } from './helpers/python';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-mat5-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * scipy.io.savemat writes the same variables compressed (-v7 style miCOMPRESSED elements) and
 * plain; the script prints what scipy itself reads back, flattened column-major, for comparison.
 */
const SAVE = `
import sys, json, numpy as np, scipy.io as sio
rng = np.random.RandomState(3)
v = {
  'X': rng.randint(0, 256, size=(5, 4, 3, 7)).astype(np.uint8),
  'y': rng.randint(1, 11, size=(7, 1)).astype(np.float64),
  'wide': (rng.randn(3, 6) * 1000).astype(np.int16),
  'single': rng.randn(2, 5).astype(np.float32),
  'i64': np.array([[-(2**40), 5, 2**50]], dtype=np.int64),
  'u32': np.array([[0, 4000000000]], dtype=np.uint32),
  'a_long_variable_name': np.arange(9, dtype=np.uint8).reshape(3, 3),
  'b': np.array([[7]], dtype=np.uint8),
  'txt': 'hello',
  'cells': np.array([[1, 'two']], dtype=object),
}
for comp in (True, False):
  sio.savemat(sys.argv[1] + ('/z.mat' if comp else '/plain.mat'), v, do_compression=comp)
back = sio.loadmat(sys.argv[1] + '/z.mat')
print(json.dumps({k: {'dims': list(back[k].shape), 'values': back[k].flatten(order='F').tolist(), 'class': str(back[k].dtype)}
  for k in ['X', 'y', 'wide', 'single', 'i64', 'u32', 'a_long_variable_name', 'b']}))
`;

interface Expected {
  dims: number[];
  values: number[];
  class: string;
}
let expected: Record<string, Expected>;
beforeAll(() => {
  expected = JSON.parse(python(SAVE, dir));
});

const CLASS_OF: Record<string, string> = { uint8: 'uint8', float64: 'double', int16: 'int16', float32: 'single', int64: 'int64', uint32: 'uint32' };

describe.each([
  ['compressed', 'z.mat'],
  ['plain', 'plain.mat'],
])('scipy.io.savemat file, %s', (_kind, file) => {
  let mat: MatFile;
  beforeAll(async () => {
    mat = await MatFile.open(path.join(dir, file));
  });

  it('lists every variable with its class and dimensions', () => {
    const vars = Object.fromEntries(mat.variables.map((v) => [v.name, v]));
    expect(Object.keys(vars).sort()).toEqual(['X', 'a_long_variable_name', 'b', 'cells', 'i64', 'single', 'txt', 'u32', 'wide', 'y']);
    for (const [name, e] of Object.entries(expected)) {
      expect({ name, class: vars[name].class, dims: vars[name].dims }).toEqual({ name, class: CLASS_OF[e.class], dims: e.dims });
    }
    expect(vars.txt.class).toBe('char');
    expect(vars.cells.class).toBe('cell');
    expect(mat.littleEndian).toBe(true);
  });

  it('reads the values scipy reads, column-major', async () => {
    for (const [name, e] of Object.entries(expected)) {
      const got = Array.from(await mat.readNumbers(name));
      if (name === 'single') got.forEach((g, i) => expect(g).toBeCloseTo(e.values[i], 4));
      else expect({ name, got }).toEqual({ name, got: e.values });
    }
  });

  it('streams a uint8 array in pieces that add up to the whole', async () => {
    const pieces: Uint8Array[] = [];
    for await (const p of mat.streamUint8('X')) pieces.push(Uint8Array.from(p));
    expect(Array.from(Buffer.concat(pieces))).toEqual(expected.X.values);
    expect(Array.from(await mat.readUint8('X'))).toEqual(expected.X.values);
  });

  it('reads 8-bit values stored as doubles, and refuses ones that are not', async () => {
    expect(Array.from(await mat.readUint8('y'))).toEqual(expected.y.values);
    await expect(mat.readUint8('wide')).rejects.toThrow(new RegExp(`${file}: variable 'wide' holds -?\\d+ at index \\d+, expected 8-bit pixel values 0\\.\\.255`));
  });

  it('names the file and what it holds when a variable is missing or not numeric', async () => {
    expect(() => mat.variable('Y')).toThrow(UserError);
    expect(() => mat.variable('Y')).toThrow(`${path.join(dir, file)}: has no variable 'Y' (it holds: `);
    await expect(mat.readNumbers('cells')).rejects.toThrow(`variable 'cells' is a cell array, expected numbers`);
  });
});

// ---------------------------------------------------------------------------------------------
// Hand-made files: the other byte order, MATLAB's narrower storage types, and corrupt input.

interface Var {
  name: string;
  cls: number; // mxCLASS
  dims: number[];
  type: number; // miTYPE of the real part
  data: Buffer; // already in the file's byte order
}

function element(type: number, data: Buffer, le: boolean): Buffer {
  if (data.length <= 4 && type !== 14) {
    const t = Buffer.alloc(8);
    const w = (data.length << 16) | type;
    if (le) t.writeUInt32LE(w >>> 0, 0);
    else t.writeUInt32BE(w >>> 0, 0);
    data.copy(t, 4);
    return t;
  }
  const t = Buffer.alloc(8);
  if (le) {
    t.writeUInt32LE(type, 0);
    t.writeUInt32LE(data.length, 4);
  } else {
    t.writeUInt32BE(type, 0);
    t.writeUInt32BE(data.length, 4);
  }
  return Buffer.concat([t, data, Buffer.alloc((8 - (data.length % 8)) % 8)]);
}

function matrix(v: Var, le: boolean): Buffer {
  const flags = Buffer.alloc(8);
  if (le) flags.writeUInt32LE(v.cls, 0);
  else flags.writeUInt32BE(v.cls, 0);
  const dims = Buffer.alloc(4 * v.dims.length);
  v.dims.forEach((d, i) => (le ? dims.writeInt32LE(d, 4 * i) : dims.writeInt32BE(d, 4 * i)));
  const body = Buffer.concat([element(6, flags, le), element(5, dims, le), element(1, Buffer.from(v.name), le), element(v.type, v.data, le)]);
  return element(14, body, le);
}

function header(le: boolean, text = 'MATLAB 5.0 MAT-file, hand made'): Buffer {
  const h = Buffer.alloc(128, 0x20);
  h.write(text, 0, 'latin1');
  h.fill(0, 116, 124);
  if (le) h.writeUInt16LE(0x0100, 124);
  else h.writeUInt16BE(0x0100, 124);
  h.write(le ? 'IM' : 'MI', 126, 'latin1');
  return h;
}

function compressed(el: Buffer, le: boolean): Buffer {
  const z = zlib.deflateSync(el);
  const t = Buffer.alloc(8);
  if (le) {
    t.writeUInt32LE(15, 0);
    t.writeUInt32LE(z.length, 4);
  } else {
    t.writeUInt32BE(15, 0);
    t.writeUInt32BE(z.length, 4);
  }
  return Buffer.concat([t, z]);
}

function save(name: string, ...parts: Buffer[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, Buffer.concat(parts));
  return f;
}

describe('hand-made MAT-files', () => {
  it('reads big-endian files, compressed or not, with small data elements', async () => {
    const d = Buffer.alloc(3 * 8);
    [1.5, -2, 1e10].forEach((v, i) => d.writeDoubleBE(v, 8 * i));
    const u16 = Buffer.alloc(4);
    u16.writeUInt16BE(513, 0);
    u16.writeUInt16BE(65535, 2);
    const vars: Var[] = [
      { name: 'd', cls: 6, dims: [1, 3], type: 9, data: d },
      { name: 'w', cls: 11, dims: [2, 1], type: 4, data: u16 }, // 4 bytes: small format
    ];
    const f = save('be.mat', header(false), matrix(vars[0], false), compressed(matrix(vars[1], false), false));
    const mat = await MatFile.open(f);
    expect(mat.littleEndian).toBe(false);
    expect(mat.variables.map((v) => [v.name, v.class, v.dims])).toEqual([
      ['d', 'double', [1, 3]],
      ['w', 'uint16', [2, 1]],
    ]);
    expect(Array.from(await mat.readNumbers('d'))).toEqual([1.5, -2, 1e10]);
    expect(Array.from(await mat.readNumbers('w'))).toEqual([513, 65535]);
  });

  it('converts a double array that MATLAB stored as uint8 or int16', async () => {
    const i16 = Buffer.alloc(10);
    [-3, 0, 7, 300, 10].forEach((v, i) => i16.writeInt16LE(v, 2 * i));
    const f = save(
      'narrow.mat',
      header(true),
      compressed(matrix({ name: 'y', cls: 6, dims: [5, 1], type: 2, data: Buffer.from([10, 1, 2, 9, 255]) }, true), true),
      matrix({ name: 'z', cls: 6, dims: [5, 1], type: 3, data: i16 }, true),
    );
    const mat = await MatFile.open(f);
    expect(Array.from(await mat.readNumbers('y'))).toEqual([10, 1, 2, 9, 255]);
    expect(Array.from(await mat.readUint8('y'))).toEqual([10, 1, 2, 9, 255]);
    expect(Array.from(await mat.readNumbers('z'))).toEqual([-3, 0, 7, 300, 10]);
    const pieces: number[] = [];
    for await (const p of mat.streamUint8('y')) pieces.push(...p);
    expect(pieces).toEqual([10, 1, 2, 9, 255]);
  });

  it('refuses files that are not level-5 MAT-files, naming them', async () => {
    const short = save('short.mat', Buffer.from('MATLAB'));
    await expect(MatFile.open(short)).rejects.toThrow(`${short}: not a MATLAB level-5 MAT-file`);
    const h5 = save('v73.mat', header(true, 'MATLAB 7.3 MAT-file, Platform: GLNXA64, HDF5 schema 1.00'), Buffer.alloc(512));
    await expect(MatFile.open(h5)).rejects.toThrow(`${h5}: is a MATLAB 7.3 (HDF5) MAT-file`);
    const png = save('pic.mat', Buffer.alloc(300, 0x89));
    await expect(MatFile.open(png)).rejects.toThrow(UserError);
    await expect(MatFile.open(path.join(dir, 'nope.mat'))).rejects.toThrow(`cannot read ${path.join(dir, 'nope.mat')}: no such file`);
  });

  it('finds truncation in plain and compressed files', async () => {
    const full = fs.readFileSync(path.join(dir, 'plain.mat'));
    const cut = save('cut-plain.mat', full.subarray(0, full.length - 100));
    await expect(MatFile.open(cut)).rejects.toThrow(new RegExp(`^${cut}: truncated: the element at byte \\d+ needs \\d+ bytes, only \\d+ remain`));

    // a compressed element whose zlib stream stops half-way, its tag fixed to match
    const x = matrix({ name: 'X', cls: 9, dims: [64, 64], type: 2, data: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)) }, true);
    const z = zlib.deflateSync(x);
    const half = z.subarray(0, Math.floor(z.length / 2));
    const tag = Buffer.alloc(8);
    tag.writeUInt32LE(15, 0);
    tag.writeUInt32LE(half.length, 4);
    const f = save('cut-z.mat', header(true), tag, half);
    const mat = await MatFile.open(f); // the header of X is in the first half
    await expect(mat.readUint8('X')).rejects.toThrow(new RegExp(`^${f}: (variable 'X' is truncated|cannot read variable 'X')`));
    const drain = async (): Promise<void> => {
      for await (const _ of mat.streamUint8('X')) {
        // read to the end
      }
    };
    await expect(drain()).rejects.toThrow(UserError);
  });

  it('reports corrupt compressed data', async () => {
    const x = matrix({ name: 'X', cls: 9, dims: [64, 64], type: 2, data: Buffer.alloc(4096, 3) }, true);
    const el = compressed(x, true);
    for (let i = 20; i < el.length - 4; i += 3) el[i] ^= 0x5a;
    const f = save('garbled.mat', header(true), el);
    await expect(
      (async () => {
        const mat = await MatFile.open(f);
        await mat.readUint8('X');
      })(),
    ).rejects.toThrow(new RegExp(`^${f}: `));
  });

  it('rejects sizes that do not fit, before allocating them', async () => {
    // dims claim 2^31 values; the data element claims as much; the file is a few hundred bytes
    const body = matrix({ name: 'X', cls: 9, dims: [65536, 32768], type: 2, data: Buffer.alloc(8) }, true);
    body.writeUInt32LE(0x80000000, body.length - 16 + 4); // the real part's byte count
    const f = save('huge.mat', header(true), body);
    const mat = await MatFile.open(f);
    await expect(mat.readUint8('X')).rejects.toThrow(`${f}: corrupt MAT-file: real part of 'X' claims 2147483648 bytes, only 8 remain in its matrix`);

    // dims and data disagree
    const f2 = save('mismatch.mat', header(true), matrix({ name: 'X', cls: 9, dims: [3, 3], type: 2, data: Buffer.alloc(8) }, true));
    await expect((await MatFile.open(f2)).readUint8('X')).rejects.toThrow(`${f2}: corrupt MAT-file: 'X' has dimensions 3x3 (9 values) but 8 bytes of uint8 data`);

    // a compressed element claiming far more than zlib can expand its bytes to
    const inner = Buffer.alloc(8);
    inner.writeUInt32LE(14, 0);
    inner.writeUInt32LE(0xfffffff0, 4);
    const z = zlib.deflateSync(Buffer.concat([inner, Buffer.alloc(64)]));
    const tag = Buffer.alloc(8);
    tag.writeUInt32LE(15, 0);
    tag.writeUInt32LE(z.length, 4);
    const f3 = save('bomb.mat', header(true), tag, z);
    await expect(MatFile.open(f3)).rejects.toThrow(new RegExp(`^${f3}: corrupt MAT-file: the compressed element at byte 128 claims 4294967280 bytes`));

    // an element type that cannot start a variable
    const f4 = save('junk.mat', header(true), Buffer.from([9, 0, 0, 0, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
    await expect(MatFile.open(f4)).rejects.toThrow(`${f4}: corrupt MAT-file: element at byte 128 has type 9`);
  });

  it('refuses a level-4 file, and compressed elements with data beyond their matrix (as scipy does)', async () => {
    const v4 = header(true);
    v4.writeUInt32LE(0, 0); // a level-4 file starts with its type word, whose high bytes are zero
    const f0 = save('v4.mat', v4, matrix({ name: 'y', cls: 9, dims: [1, 1], type: 2, data: Buffer.from([1]) }, true));
    await expect(MatFile.open(f0)).rejects.toThrow(`${f0}: not a MATLAB level-5 MAT-file (it starts like a level-4 file, which is not read)`);

    const y = matrix({ name: 'y', cls: 6, dims: [3, 1], type: 2, data: Buffer.from([1, 10, 3]) }, true);
    // bytes after the zlib stream, inside the element
    const z = Buffer.concat([zlib.deflateSync(y), Buffer.from('trailing')]);
    const tag = Buffer.alloc(8);
    tag.writeUInt32LE(15, 0);
    tag.writeUInt32LE(z.length, 4);
    const f1 = save('trailing.mat', header(true), tag, z);
    await expect((await MatFile.open(f1)).readNumbers('y')).rejects.toThrow(`${f1}: corrupt MAT-file: the compressed element at byte 128 has 8 bytes after its zlib stream`);
    // inflated bytes after the matrix
    const f2 = save('longer.mat', header(true), compressed(Buffer.concat([y, Buffer.alloc(16)]), true));
    await expect((await MatFile.open(f2)).readNumbers('y')).rejects.toThrow(`${f2}: corrupt MAT-file: the compressed element at byte 128 holds more than its matrix`);
    const drain = async (): Promise<void> => {
      for await (const _ of (await MatFile.open(f2)).streamUint8('y')) {
        // read to the end
      }
    };
    await expect(drain()).rejects.toThrow('holds more than its matrix');
  });

  it('refuses to read a variable into memory past the limit', async () => {
    const mat = await MatFile.open(path.join(dir, 'z.mat'));
    await expect(mat.readUint8('X', 100)).rejects.toThrow("variable 'X' holds 420 bytes, more than the 100 read into memory");
  });
});
