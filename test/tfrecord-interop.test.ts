import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeImageExample, decodeLabel, encodeImageExample } from '../src/data/example';
import { decodeExampleFeatures, encodeExampleFeatures, FeatureMap } from '../src/data/example-generic';
import { inspectPart } from '../src/data/inspect';
import { readAllRecords, writeRecords } from '../src/data/tfrecord';
import { loadImageSet } from '../src/train/dataset';

/**
 * TFRecord / tf.train.Example interoperability, checked against code that shares nothing with ours:
 * a file TensorFlow made (the npm package tfrecord's test data, see fixtures/tensorflow/README.md),
 * and a Python TFRecord reader and writer written here from the format descriptions alone (struct
 * framing, a bitwise CRC-32C, hand-rolled protobuf varints; no TensorFlow, no protobuf library).
 * Both directions: what we write, Python reads; what Python writes (unsorted map keys, unpacked
 * repeated fields, a PNG made with zlib), we read.
 */

const FIXTURE = path.join(__dirname, 'fixtures', 'tensorflow', 'tfrecord-npm-data.tfrecord');

const PYTHON = String.raw`
import base64, json, struct, sys, zlib

def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF

def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF

def read_varint(buf, i):
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7

def fields(buf):
    i = 0
    while i < len(buf):
        tag, i = read_varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = read_varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = read_varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError('wire type %d' % wire)
        yield number, wire, value

def signed64(v):
    return v - (1 << 64) if v >= (1 << 63) else v

def parse_list(kind, buf):
    out = []
    for number, wire, value in fields(buf):
        if number != 1:
            continue
        if kind == 'bytes_list':
            out.append(base64.b64encode(value).decode())
        elif kind == 'float_list':
            out.extend(struct.unpack('<%df' % (len(value) // 4), value))
        elif wire == 2:
            j = 0
            while j < len(value):
                v, j = read_varint(value, j)
                out.append(signed64(v))
        else:
            out.append(signed64(value))
    return out

KINDS = {1: 'bytes_list', 2: 'float_list', 3: 'int64_list'}

def parse_example(buf):
    features = {}
    for number, _, payload in fields(buf):
        if number != 1:
            continue
        for n2, _, entry in fields(payload):
            if n2 != 1:
                continue
            key, feature = None, b''
            for n3, _, value in fields(entry):
                if n3 == 1:
                    key = value.decode()
                elif n3 == 2:
                    feature = value
            kind, values = 'empty', []
            for n4, _, lst in fields(feature):
                if n4 in KINDS:
                    if KINDS[n4] != kind:
                        values = []
                    kind = KINDS[n4]
                    values += parse_list(kind, lst)
            features[key] = [kind, values]
    return features

def read(path):
    data = open(path, 'rb').read()
    i, records = 0, []
    while i < len(data):
        header = data[i:i + 8]
        (length,) = struct.unpack('<Q', header)
        (length_crc,) = struct.unpack('<I', data[i + 8:i + 12])
        assert length_crc == masked(header), 'length crc'
        payload = data[i + 12:i + 12 + length]
        (data_crc,) = struct.unpack('<I', data[i + 12 + length:i + 16 + length])
        assert data_crc == masked(payload), 'data crc'
        records.append(parse_example(payload))
        i += 16 + length
    return records

def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)

def ld(number, payload):
    return varint(number << 3 | 2) + varint(len(payload)) + payload

def example(features):
    # keys in the order given; repeated numbers unpacked, one field per value
    entries = b''
    for key, kind, values in features:
        if kind == 'bytes_list':
            feature = ld(1, b''.join(ld(1, v) for v in values))
        elif kind == 'float_list':
            feature = ld(2, b''.join(varint(1 << 3 | 5) + struct.pack('<f', v) for v in values))
        else:
            feature = ld(3, b''.join(varint(1 << 3 | 0) + varint(v) for v in values))
        entries += ld(1, ld(1, key.encode()) + ld(2, feature))
    return ld(1, entries)

def png(width, height, rgb):
    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body) & 0xFFFFFFFF)
    rows = b''.join(b'\x00' + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))

def write(path):
    pixels = bytes(range(0, 18 * 10, 10))  # 2 rows x 3 columns x RGB
    records = [
        example([('label', 'int64_list', [3]), ('image', 'bytes_list', [png(3, 2, pixels)])]),
        example([('label', 'int64_list', [-1]), ('image', 'bytes_list', [png(3, 2, pixels[::-1])]), ('id', 'int64_list', [1 << 40, 7])]),
        example([('z', 'float_list', [0.5, -2.25]), ('a', 'bytes_list', [b'x', b'']), ('n', 'int64_list', [])]),
    ]
    with open(path, 'wb') as f:
        for r in records:
            header = struct.pack('<Q', len(r))
            f.write(header + struct.pack('<I', masked(header)) + r + struct.pack('<I', masked(r)))
    print(json.dumps({'pixels': list(pixels), 'crc_check': masked(b'123456789'), 'crc_raw': crc32c(b'123456789')}))

if sys.argv[1] == 'read':
    print(json.dumps(read(sys.argv[2])))
else:
    write(sys.argv[2])
`;

let tmp: string;
let script: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-interop-'));
  script = path.join(tmp, 'tfrecord_independent.py');
  fs.writeFileSync(script, PYTHON);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function python(...args: string[]): unknown {
  const r = spawnSync('python3', [script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr || r.error}`);
  return JSON.parse(r.stdout);
}

/** Our decode in the Python reader's form: [kind, values], bytes as base64, floats as numbers. */
function asPython(f: FeatureMap): Record<string, [string, unknown[]]> {
  const out: Record<string, [string, unknown[]]> = {};
  for (const [k, v] of Object.entries(f)) {
    out[k] = [v.kind, v.kind === 'bytes_list' ? v.values.map((b) => Buffer.from(b).toString('base64')) : v.values.map((x) => (typeof x === 'bigint' ? Number(x) : x))];
  }
  return out;
}

describe('the TensorFlow-made file of the npm package tfrecord', () => {
  it('reads as one record with its three features', () => {
    const records = readAllRecords(FIXTURE);
    expect(records).toHaveLength(1);
    const f = decodeExampleFeatures(records[0]);
    expect(Object.keys(f)).toEqual(['answer', 'pi', 'name']);
    expect(f.answer).toEqual({ kind: 'int64_list', values: [42] });
    expect(f.pi.kind).toBe('float_list');
    expect(f.pi.values).toEqual([Math.fround(3.14)]);
    expect(f.name.kind).toBe('bytes_list');
    expect(Buffer.from(f.name.values[0] as Uint8Array).toString()).toBe('ABC');
  });

  it('decodes the same in the independent Python reader', () => {
    const py = python('read', FIXTURE) as unknown[];
    expect(py).toEqual([asPython(decodeExampleFeatures(readAllRecords(FIXTURE)[0]))]);
  });

  it('is an Example without image/label: the image decoders say so, inspect describes it', async () => {
    const rec = readAllRecords(FIXTURE)[0];
    expect(() => decodeLabel(rec)).toThrow(/lacks feature 'label'/);
    expect(() => decodeImageExample(rec)).toThrow(/lacks feature 'image' and 'label'/);
    const r = await inspectPart({ role: 'file', file: FIXTURE, skip: 0, limit: Infinity });
    expect(r).toMatchObject({ records: 1, otherRecords: 1, features: { answer: 'int64_list[1]', pi: 'float_list[1]', name: 'bytes_list[1]' } });
    expect(r.firstOther).toBe('answer: int64_list[1] = 42; name: bytes_list[1] (3 bytes); pi: float_list[1] = 3.14');
  });
});

describe('an independent Python TFRecord implementation', () => {
  it('reads what we write: framing, CRCs, image/label and arbitrary features', () => {
    const file = path.join(tmp, 'ours.tfrecord');
    const image = Uint8Array.from({ length: 300 }, (_, i) => (i * 13) & 0xff);
    const generic: FeatureMap = {
      weights: { kind: 'float_list', values: [1.5, -0.25, 3.140000104904175] },
      names: { kind: 'bytes_list', values: [new TextEncoder().encode('cat'), new Uint8Array(0)] },
      ids: { kind: 'int64_list', values: [0, -5, 2 ** 45, -(2n ** 62n)] },
      none: { kind: 'int64_list', values: [] },
    };
    const records = [encodeImageExample(image, 0), encodeImageExample(image.subarray(0, 7), 9), encodeImageExample(new Uint8Array(0), -1), encodeExampleFeatures(generic)];
    writeRecords(file, records);
    const py = python('read', file) as Array<Record<string, [string, unknown[]]>>;
    expect(py).toHaveLength(4);
    const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
    expect(py[0]).toEqual({ image: ['bytes_list', [b64(image)]], label: ['int64_list', [0]] });
    expect(py[1]).toEqual({ image: ['bytes_list', [b64(image.subarray(0, 7))]], label: ['int64_list', [9]] });
    expect(py[2]).toEqual({ image: ['bytes_list', ['']], label: ['int64_list', [-1]] });
    expect(py[3]).toEqual({
      ids: ['int64_list', [0, -5, 2 ** 45, -(2 ** 62)]],
      names: ['bytes_list', [b64(new TextEncoder().encode('cat')), '']],
      none: ['int64_list', []],
      weights: ['float_list', [1.5, -0.25, Math.fround(3.14)]],
    });
    // and our own generic decoder agrees with Python on every record
    py.forEach((p, i) => expect(asPython(decodeExampleFeatures(records[i]))).toEqual(p));
  });

  it('writes what we read: unsorted keys, unpacked fields, a zlib-made PNG decoded to its pixels', async () => {
    const file = path.join(tmp, 'python.tfrecord');
    const made = python('write', file) as { pixels: number[]; crc_check: number; crc_raw: number };
    // the two CRC-32C implementations agree on the standard check value
    expect(made.crc_raw).toBe(0xe3069283);
    const records = readAllRecords(file);
    expect(records).toHaveLength(3);
    expect(decodeLabel(records[0])).toBe(3);
    expect(decodeLabel(records[1])).toBe(-1);
    expect(decodeImageExample(records[1]).label).toBe(-1);
    const f1 = decodeExampleFeatures(records[1]);
    expect(Object.keys(f1)).toEqual(['label', 'image', 'id']);
    expect(f1.id).toEqual({ kind: 'int64_list', values: [2 ** 40, 7] });
    const f2 = decodeExampleFeatures(records[2]);
    expect(f2.z).toEqual({ kind: 'float_list', values: [0.5, -2.25] });
    expect(f2.a.values.map((b) => Buffer.from(b as Uint8Array).toString())).toEqual(['x', '']);
    expect(f2.n).toEqual({ kind: 'int64_list', values: [] });

    // the first two are image/label records the training loader can decode
    const two = path.join(tmp, 'python-images.tfrecord');
    writeRecords(two, records.slice(0, 2));
    const set = await loadImageSet(two);
    expect(set.shape).toEqual({ height: 2, width: 3, channels: 3 });
    expect(Array.from(set.labels)).toEqual([3, -1]);
    expect(Array.from(set.images.subarray(0, 18))).toEqual(made.pixels);
    expect(Array.from(set.images.subarray(18))).toEqual([...made.pixels].reverse());
  });
});
