import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeNpy, encodeNpy, int64Array, readNpy, writeNpy } from '../src/data/npy';
import { UserError } from '../src/errors';

const FIX = path.join(__dirname, 'fixtures', 'npy');
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-npy-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * The fixtures were written by numpy 2.4 `numpy.save` (see test/fixtures/npy/README.md); our
 * writer must produce the same bytes and our reader the same values.
 */
const FIXTURES = [
  { file: 'int64-1d.npy', data: int64Array([3, -1, 0, 9007199254740991, 7]), shape: [5] },
  { file: 'float32-2x3.npy', data: Float32Array.from([0.5, -1.25, 3.0, 1e-3, 65504.0, -0.0]), shape: [2, 3] },
  { file: 'uint8-2x2x3.npy', data: Uint8Array.from({ length: 12 }, (_, i) => i * 20), shape: [2, 2, 3] },
  { file: 'float64-scalar.npy', data: Float64Array.from([2.5]), shape: [] },
  { file: 'int32-0x4.npy', data: new Int32Array(0), shape: [0, 4] },
];

describe('.npy', () => {
  it.each(FIXTURES)('writes $file byte for byte as numpy.save', ({ file, data, shape }) => {
    const ours = encodeNpy(data, shape);
    expect(ours.toString('hex')).toBe(fs.readFileSync(path.join(FIX, file)).toString('hex'));
    expect(ours.indexOf(0x0a)).toBe(ours.length - data.byteLength - 1); // header ends in \n ...
    expect((ours.length - data.byteLength) % 64).toBe(0); // ... at a multiple of 64 bytes
  });

  it.each(FIXTURES)('reads numpy-written $file', ({ file, data, shape }) => {
    const a = readNpy(path.join(FIX, file));
    expect(a.shape).toEqual(shape);
    expect(a.data.constructor).toBe(data.constructor);
    expect(Array.from(a.data as ArrayLike<number | bigint>)).toEqual(Array.from(data as ArrayLike<number | bigint>));
  });

  it('round-trips every dtype through a file, written atomically', () => {
    const cases = [
      { dtype: 'int64', data: int64Array([-5, 0, 5, 2 ** 40]), shape: [4] },
      { dtype: 'int32', data: Int32Array.from([-2147483648, 2147483647, 1, 2, 3, 4]), shape: [2, 3] },
      { dtype: 'uint8', data: Uint8Array.from([0, 128, 255, 1]), shape: [1, 2, 2] },
      { dtype: 'float32', data: Float32Array.from([NaN, Infinity, -0.0, 1.5]), shape: [2, 2] },
      { dtype: 'float64', data: Float64Array.from([Math.PI, -Math.E, 1e-300, 1e300]), shape: [4, 1] },
    ];
    for (const { dtype, data, shape } of cases) {
      const file = path.join(dir, `${dtype}.npy`);
      writeNpy(file, data, shape);
      const back = readNpy(file);
      expect(back.dtype).toBe(dtype);
      expect(back.shape).toEqual(shape);
      expect(Buffer.from(back.data.buffer).equals(Buffer.from(data.buffer))).toBe(true);
    }
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  it('defaults to a 1-D shape', () => {
    expect(decodeNpy(encodeNpy(Float32Array.from([1, 2, 3]))).shape).toEqual([3]);
  });

  it('refuses a shape that does not fit the data', () => {
    expect(() => encodeNpy(new Uint8Array(6), [4, 2])).toThrow('holds 8 values but the data has 6');
    expect(() => writeNpy(path.join(dir, 'x.npy'), new Uint8Array(6), [4, 2])).toThrow(/holds 8 values/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('reads format 2.0 headers', () => {
    const v1 = encodeNpy(int64Array([1, 2]));
    const headerLen = v1.readUInt16LE(8);
    const v2 = Buffer.concat([v1.subarray(0, 6), Buffer.from([2, 0]), Buffer.alloc(4), v1.subarray(10)]);
    v2.writeUInt32LE(headerLen, 8);
    const a = decodeNpy(v2);
    expect(a.dtype).toBe('int64');
    expect(Array.from(a.data as BigInt64Array)).toEqual([1n, 2n]);
  });

  it('gives one clear line for files it cannot read', () => {
    const bad = (name: string, bytes: Uint8Array): string => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, bytes);
      try {
        readNpy(f);
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
      throw new Error('expected readNpy to throw');
    };
    expect(bad('text.npy', Buffer.from('hello world'))).toMatch(/text\.npy: not a \.npy file/);
    const good = encodeNpy(Float32Array.from([1, 2, 3]));
    expect(bad('short.npy', good.subarray(0, good.length - 1))).toMatch(/short\.npy: truncated: .*needs 12 data bytes, the file has 11/);
    const be = Buffer.from(good);
    be.write("'>f4'", be.indexOf("'<f4'"), 'latin1');
    expect(bad('be.npy', be)).toMatch(/unsupported dtype '>f4'/);
    const fortran = Buffer.from(good);
    fortran.write('True ', fortran.indexOf('False'), 'latin1');
    expect(bad('f.npy', fortran)).toMatch(/Fortran-order arrays are not supported/);
    expect(() => readNpy(path.join(dir, 'nope.npy'))).toThrow(/nope\.npy: no such file/);
  });

  it('reads headers only as numpy would: a strict Python literal with exactly the three keys', () => {
    const good = encodeNpy(Float32Array.from([1, 2, 3]));
    const withHeader = (edit: (h: string) => string): Buffer => {
      const len = good.readUInt16LE(8);
      const header = edit(good.toString('latin1', 10, 10 + len)).padEnd(len - 1, ' ').slice(0, len - 1) + '\n';
      return Buffer.concat([good.subarray(0, 10), Buffer.from(header, 'latin1'), good.subarray(10 + len)]);
    };
    const reason = (b: Buffer): string => {
      try {
        decodeNpy(b);
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
      return 'read';
    };
    expect(reason(withHeader((h) => h))).toBe('read');
    expect(reason(withHeader((h) => h.replace("'shape': (3,)", '"shape": (3, )')))).toBe('read');
    expect(reason(withHeader((h) => h.replace('(3,)', '(3)')))).toMatch(/\(n\) is not a tuple/);
    expect(reason(withHeader((h) => h.replace('(3,)', '(0x3,)')))).toMatch(/unreadable header \(expected ',' or '\)'/);
    expect(reason(withHeader((h) => h.replace("'descr'", "'dtype'")))).toMatch(/header keys are "dtype, fortran_order, shape", expected descr, fortran_order, shape/);
    expect(reason(withHeader((h) => h.replace(', }', ", 'x': 1, }")))).toMatch(/expected a string, True, False or a tuple/);
    expect(reason(withHeader((h) => h.replace('}', '} junk')))).toMatch(/unexpected text after the dict/);
    expect(reason(withHeader((h) => ` ${h}`))).toMatch(/expected '\{'/);
    const minor = Buffer.from(good);
    minor[7] = 1;
    expect(reason(minor)).toBe('unsupported .npy format version 1.1');
  });

  it('keeps errors about damaged headers to one short line', () => {
    const junk = Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 4]), Buffer.alloc(1024, 0x01)]);
    let message = '';
    try {
      decodeNpy(junk);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^unreadable header \(expected '\{' at character 0\): "\?{80}…"$/);
  });
});

