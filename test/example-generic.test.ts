import { encodeImageExample } from '../src/data/example';
import { decodeExampleFeatures, describeFeature, encodeExampleFeatures, float32String } from '../src/data/example-generic';

const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('decodeExampleFeatures', () => {
  it('reads every feature kind, packed or not', () => {
    // Example{features{feature{key:"a" value{int64_list{value:[1, 300] unpacked}}}
    //                  feature{key:"b" value{float_list{value:[1.5] unpacked}}}}}
    const bytes = unhex(`
      0a 1e
        0a 0c 0a 01 61 12 07 1a 05 08 01 08 ac 02
        0a 0e 0a 01 62 12 09 12 07 0d 00 00 c0 3f 0a 00`);
    const f = decodeExampleFeatures(bytes);
    expect(f.a).toEqual({ kind: 'int64_list', values: [1, 300] });
    // the second, empty packed run of b adds nothing
    expect(f.b).toEqual({ kind: 'float_list', values: [1.5] });
  });

  it('keeps the last of a repeated key, and merges or resets oneof members as protobuf does', () => {
    const first = encodeExampleFeatures({ k: { kind: 'int64_list', values: [1] } });
    const second = encodeExampleFeatures({ k: { kind: 'int64_list', values: [2] } });
    // two serialized Examples concatenated parse as one message with both map entries: the last wins
    expect(decodeExampleFeatures(Uint8Array.from([...first, ...second])).k.values).toEqual([2]);
    // a Feature with int64_list twice (merged), then with bytes_list (replaces)
    const feature = unhex('1a 02 08 05 1a 02 08 06');
    const entry = (f: Uint8Array) => Uint8Array.from([0x0a, 3 + 2 + f.length, 0x0a, 1, 0x6b, 0x12, f.length, ...f]);
    const example = (f: Uint8Array) => Uint8Array.from([0x0a, entry(f).length, ...entry(f)]);
    expect(decodeExampleFeatures(example(feature)).k).toEqual({ kind: 'int64_list', values: [5, 6] });
    const switched = Uint8Array.from([...feature, ...unhex('0a 03 0a 01 7a')]);
    const bytesValue = decodeExampleFeatures(example(switched)).k;
    expect(bytesValue.kind).toBe('bytes_list');
    expect(Buffer.from(bytesValue.values[0] as Uint8Array).toString()).toBe('z');
  });

  it('decodes large and negative int64 exactly', () => {
    const f = decodeExampleFeatures(encodeExampleFeatures({ v: { kind: 'int64_list', values: [-1, 2n ** 63n - 1n, -(2n ** 63n), 2 ** 53 - 1] } }));
    expect(f.v.values).toEqual([-1, 2n ** 63n - 1n, -(2n ** 63n), 2 ** 53 - 1]);
  });

  it('treats a feature called __proto__ as a plain key', () => {
    const f = decodeExampleFeatures(encodeExampleFeatures({ ['__proto__']: { kind: 'int64_list', values: [3] } } as never));
    expect(Object.keys(f)).toEqual(['__proto__']);
    expect(f['__proto__']).toEqual({ kind: 'int64_list', values: [3] });
  });

  it('refuses malformed bytes with an Error naming the problem', () => {
    expect(() => decodeExampleFeatures(unhex('0a 05 0a 03'))).toThrow(/not a valid tf.train.Example \(truncated/);
    expect(() => decodeExampleFeatures(unhex('0f'))).toThrow(/wire type 7/);
    expect(() => decodeExampleFeatures(unhex('0a ff ff ff ff ff ff ff ff ff 01'))).toThrow(/not a valid tf.train.Example/);
  });
});

describe('encodeExampleFeatures', () => {
  it('writes image/label records byte for byte as encodeImageExample (and so as TensorFlow)', () => {
    const image = Uint8Array.from({ length: 200 }, (_, i) => i);
    for (const label of [0, 7, -1, 2 ** 40]) {
      const generic = encodeExampleFeatures({ label: { kind: 'int64_list', values: [label] }, image: { kind: 'bytes_list', values: [image] } });
      expect(hex(generic)).toBe(hex(encodeImageExample(image, label)));
    }
  });

  it('round-trips every kind, empty lists included', () => {
    const features = {
      b: { kind: 'bytes_list' as const, values: [Uint8Array.of(1), new Uint8Array(0)] },
      f: { kind: 'float_list' as const, values: [0.25, -8] },
      i: { kind: 'int64_list' as const, values: [] },
      e: { kind: 'empty' as const, values: [] as [] },
    };
    const back = decodeExampleFeatures(encodeExampleFeatures(features));
    expect(back.b.values.map((v) => Array.from(v as Uint8Array))).toEqual([[1], []]);
    expect(back.f).toEqual(features.f);
    expect(back.i).toEqual({ kind: 'int64_list', values: [] });
    expect(back.e).toEqual({ kind: 'empty', values: [] });
  });
});

describe('describeFeature', () => {
  it('shows kinds, counts and the first values', () => {
    expect(describeFeature({ kind: 'int64_list', values: [1, 2, 3, 4, 5] })).toBe('int64_list[5] = 1, 2, 3, 4, ...');
    expect(describeFeature({ kind: 'bytes_list', values: [new Uint8Array(12)] })).toBe('bytes_list[1] (12 bytes)');
    expect(describeFeature({ kind: 'float_list', values: [Math.fround(3.14)] })).toBe('float_list[1] = 3.14');
    expect(describeFeature({ kind: 'empty', values: [] })).toBe('empty');
  });

  it('prints float32 values by their shortest decimal', () => {
    expect(float32String(Math.fround(0.1))).toBe('0.1');
    expect(float32String(Math.fround(1 / 3))).toBe('0.33333334');
    expect(float32String(2)).toBe('2');
  });
});
