import { decodeImageExample, decodeLabel, encodeImageExample } from '../src/data/example';
import { encodePngSync } from '../src/data/png';
import { UserError } from '../src/errors';
import { expectClean, fuzzInputs, runFuzz } from './helpers/fuzz';

/**
 * tf.train.Example decoding under damage: both decoders (the full one training uses and the
 * label-only walk create-split uses) end in a UserError or a well-formed result, and where the
 * full decoder reads a record the label walk reads the same label.
 */

const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

const SEEDS = [
  // written by Python protobuf (see example.test.ts): image 010203 label 7; empty image label 0;
  // label -1 as a ten-byte varint; an extra feature before image; an unpacked label list
  '0a220a100a05696d61676512070a050a030102030a0e0a056c6162656c12051a030a0107',
  '0a1f0a0d0a05696d61676512040a020a000a0e0a056c6162656c12051a030a0100',
  '0a2c0a110a05696d61676512080a060a0489504e470a170a056c6162656c120e1a0c0a0affffffffffffffffff01',
  '0a340a0f0a0668656967687412051a030a011c0a110a05696d61676512080a060a0489504e470a0e0a056c6162656c12051a030a0104',
  '0a1f0a0d0a056c6162656c12041a0208050a0e0a05696d61676512050a030a0141',
].map(unhex);
SEEDS.push(
  encodeImageExample(encodePngSync(Uint8Array.from({ length: 16 }, (_, i) => i * 16), 4, 4, 1), 3),
  encodeImageExample(new Uint8Array(300).fill(7), 1234567890123),
);

interface Decoded {
  full: { image: Uint8Array; label: number } | UserError;
  label: number | UserError;
}

function attempt<T>(fn: () => T): T | UserError {
  try {
    return fn();
  } catch (e) {
    if (e instanceof UserError) return e;
    throw e;
  }
}

test('tf.train.Example: random and damaged records end in a UserError or a well-formed example', async () => {
  let fullOk = 0;
  let labelOnlyOk = 0;
  const stats = await runFuzz(
    fuzzInputs({ seeds: SEEDS, mutations: 6000, random: 1500, randomMaxBytes: 200, seed: 3 }),
    (input): Decoded => ({ full: attempt(() => decodeImageExample(input.bytes)), label: attempt(() => decodeLabel(input.bytes)) }),
    {
      check: ({ full, label }) => {
        for (const e of [full, label]) {
          if (e instanceof UserError && !/tf\.train\.Example|feature 'label'|feature 'image'|int64 label/.test(e.message)) throw new Error(`unclear error: ${e.message}`);
        }
        if (!(full instanceof UserError)) {
          fullOk++;
          if (!(full.image instanceof Uint8Array) || !Number.isSafeInteger(full.label)) throw new Error('ill-formed example');
          if (label instanceof UserError) throw new Error(`full decode read label ${full.label}, the label walk refused: ${label.message}`);
          if (label !== full.label) throw new Error(`full decode read label ${full.label}, the label walk ${label}`);
        } else if (!(label instanceof UserError)) {
          labelOnlyOk++;
          if (!Number.isSafeInteger(label)) throw new Error(`label ${label} is not an integer`);
        }
      },
    },
  );
  expectClean('tf.train.Example', stats, 8000);
  expect(fullOk).toBeGreaterThan(150);
  if (process.env.FUZZ_REPORT) console.log(`label walk alone accepted ${labelOnlyOk}`);
});
