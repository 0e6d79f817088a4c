import { decodeImageExample, decodeLabel, encodeImageExample } from '../src/data/example';
import { UserError } from '../src/errors';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/**
 * Serializations made by Python protobuf (upb) from tensorflow/core/example/*.proto with
 * SerializeToString(deterministic=True), i.e. what TensorFlow writes with map keys sorted.
 */
const PY = {
  // image = bytes 01 02 03, label = 7
  small: '0a220a100a05696d61676512070a050a030102030a0e0a056c6162656c12051a030a0107',
  // image = b'', label = 0
  empty: '0a1f0a0d0a05696d61676512040a020a000a0e0a056c6162656c12051a030a0100',
  // image = 89 50 4e 47, label = -1 (ten-byte varint)
  negative: '0a2c0a110a05696d61676512080a060a0489504e470a170a056c6162656c120e1a0c0a0affffffffffffffffff01',
  // an extra int64 feature 'height' = 28 before image; label = 4
  extraKey: '0a340a0f0a0668656967687412051a030a011c0a110a05696d61676512080a060a0489504e470a0e0a056c6162656c12051a030a0104',
};

describe('tf.train.Example', () => {
  it('encodes byte for byte as TensorFlow (packed int64, sorted map entries)', () => {
    expect(hex(encodeImageExample(Uint8Array.from([1, 2, 3]), 7))).toBe(PY.small);
    expect(hex(encodeImageExample(new Uint8Array(0), 0))).toBe(PY.empty);
  });

  it('round-trips image bytes and labels, including large ones', () => {
    const image = new Uint8Array(5000).map((_, i) => (i * 7) & 0xff);
    for (const label of [0, 9, 255, 1234567890123]) {
      const back = decodeImageExample(encodeImageExample(image, label));
      expect(back.label).toBe(label);
      expect(hex(back.image)).toBe(hex(image));
      expect(decodeLabel(encodeImageExample(image, label))).toBe(label);
    }
  });

  it('decodes what TensorFlow writes, with either decoder', () => {
    for (const [s, label, image] of [
      [PY.small, 7, '010203'],
      [PY.negative, -1, '89504e47'],
      [PY.extraKey, 4, '89504e47'],
    ] as const) {
      const ex = decodeImageExample(unhex(s));
      expect(ex.label).toBe(label);
      expect(hex(ex.image)).toBe(image);
      expect(decodeLabel(unhex(s))).toBe(label);
    }
  });

  it('accepts an unpacked int64_list, as protobuf parsers must', () => {
    // label = 5 written unpacked (08 05), then image = 'A'; Python protobuf parses it to [5]
    const msg = '0a1f0a0d0a056c6162656c12041a0208050a0e0a05696d61676512050a030a0141';
    expect(decodeLabel(unhex(msg))).toBe(5);
    expect(decodeImageExample(unhex(msg)).label).toBe(5);
  });

  it('says which feature is missing or ill-typed', () => {
    // these made by Python protobuf too: only 'image'; then 'label' as a bytes_list
    const onlyImage = '0a110a0f0a05696d61676512060a040a02abcd';
    expect(() => decodeImageExample(unhex(onlyImage))).toThrow("lacks feature 'label' (has: image)");
    expect(() => decodeLabel(unhex(onlyImage))).toThrow("lacks feature 'label'");
    const bytesLabel = '0a230a0f0a05696d61676512060a040a02abcd0a100a056c6162656c12070a050a03414243';
    expect(() => decodeImageExample(unhex(bytesLabel))).toThrow("'label' must be an int64_list with one value, got bytes_list");
    expect(() => decodeLabel(unhex(bytesLabel))).toThrow("'label' must be an int64_list with one value, got bytes_list");
  });

  it('rejects malformed bytes with a clear UserError (callers add the file and record)', () => {
    const good = encodeImageExample(Uint8Array.from([1, 2, 3]), 7);
    const truncated = good.subarray(0, good.length - 3);
    expect(() => decodeImageExample(truncated)).toThrow(UserError);
    expect(() => decodeLabel(truncated)).toThrow(UserError);
    expect(() => decodeImageExample(truncated)).toThrow(/not a valid tf\.train\.Example/);
    expect(() => decodeLabel(truncated)).toThrow(/not a valid tf\.train\.Example/);
    expect(() => decodeLabel(Uint8Array.from([0x0f]))).toThrow(/not a valid tf\.train\.Example|lacks/);
  });

  it('refuses a non-integer label', () => {
    expect(() => encodeImageExample(new Uint8Array(1), 1.5)).toThrow(/integer/);
  });

  it('refuses a negative field length instead of walking backwards (which looped forever)', () => {
    // features (field 1) whose length, -11 as a ten-byte varint, leads from byte 11 back to its own tag
    const negative = Uint8Array.from([0x0a, 0xf5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(() => decodeLabel(negative)).toThrow(/not a valid tf\.train\.Example \(negative field length -11 at byte 1\)/);
    expect(() => decodeImageExample(negative)).toThrow(UserError);
  });
});

