import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ALGORITHMS } from '../src/algorithms/registry';
import { UserError } from '../src/errors';
import { RandomState } from '../src/random';
import { readConfigFile, resolveSettings, SHARED, type Settings } from '../src/train/config';
import { readClassMapping } from '../src/train/dataset';
import { expectClean, fuzzInputs, onDisk, runFuzz, type FuzzInput } from './helpers/fuzz';

/**
 * JSON configs under damage: `--config` files (read, then resolved against every algorithm) and
 * `--class-mapping` files end in a one-line UserError, or in settings that hold exactly what the
 * file says. Inputs: byte-level damage of real configs, random JSON documents built from the
 * real setting names, and random bytes.
 */

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-fuzz-config-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const NAMES = Array.from(new Set([...SHARED, ...ALGORITHMS.flatMap((a) => a.hparams)].map((s) => s.name)));

function randomValue(rng: RandomState, depth = 0): unknown {
  switch (rng.randint(depth > 1 ? 7 : 9)) {
    case 0: return rng.randint(200) - 50;
    case 1: return [0.5, 1e-3, 0.999, -0, 1e308, 2 ** 53 + 2, -1, 0, 64][rng.randint(9)];
    case 2: return rng.randomSample() * 10;
    case 3: return rng.randint(2) === 1;
    case 4: return ['resnet', 'te_cnn', 'adam', 'sgd', 'cosine', 'none', '', 'x'.repeat(rng.randint(50)), '\u00e9\n'][rng.randint(9)];
    case 5: return null;
    case 6: return String(rng.randint(100));
    case 7: return Array.from({ length: rng.randint(4) }, () => randomValue(rng, depth + 1));
    default: return Object.fromEntries(Array.from({ length: rng.randint(4) }, () => [randomKey(rng), randomValue(rng, depth + 1)]));
  }
}

function randomKey(rng: RandomState): string {
  const r = rng.randint(10);
  if (r < 7) {
    const n = NAMES[rng.randint(NAMES.length)];
    return rng.randint(3) === 0 ? n.replace(/_/g, '-') : n;
  }
  return ['0', '1', '10', 'constructor', 'toString', '__proto__', '', 'lr ', 'LR'][rng.randint(9)];
}

function* randomDocuments(count: number, seed: number): Generator<FuzzInput> {
  const rng = new RandomState(seed);
  for (let k = 0; k < count; k++) {
    const top = rng.randint(10) === 0 ? randomValue(rng) : Object.fromEntries(Array.from({ length: rng.randint(6) }, () => [randomKey(rng), randomValue(rng, 1)]));
    yield { bytes: Buffer.from(JSON.stringify(top)), how: 'random JSON document' };
  }
}

function* chain(...gens: Iterable<FuzzInput>[]): Generator<FuzzInput> {
  for (const g of gens) yield* g;
}

const CONFIG_SEEDS = [
  '{"lr": 0.01, "batch": 32, "arch": "te_cnn"}',
  '{\n  "w_match": 75,\n  "beta": 0.75,\n  "train-kimg": 2,\n  "ema": 0.999,\n  "filters": 32\n}\n',
  '{}',
  '{"optimizer": "sgd", "momentum": 0.9, "lr_decay": "cosine", "wd_mode": "l2", "wd": 0.0005}',
  '[1, 2]',
  '"lr"',
  'null',
].map((s) => Buffer.from(s));

test('--config files: random and damaged JSON ends in a one-line UserError or settings that say what the file says', async () => {
  let resolved = 0;
  const stats = await runFuzz(
    chain(fuzzInputs({ seeds: CONFIG_SEEDS, mutations: 2500, random: 300, randomMaxBytes: 120, seed: 31 }), randomDocuments(2500, 37)),
    (input) =>
      onDisk(dir, '.json', input.bytes, (file) => {
        const config = readConfigFile(file);
        const outcomes = ALGORITHMS.map((algo) => {
          try {
            return resolveSettings(algo, config, {});
          } catch (e) {
            if (e instanceof UserError) return e;
            throw e;
          }
        });
        return { config, outcomes, text: Buffer.from(input.bytes).toString('utf8') };
      }),
    {
      check: ({ config, outcomes, text }) => {
        // every key of the file is a setting now, with the file's value, or the algorithm refused the file
        const parsed = JSON.parse(text) as Record<string, unknown>;
        const keys = Object.keys(parsed).map((k) => k.replace(/-/g, '_'));
        if (Object.keys(config).length !== new Set(keys).size) throw new Error(`config has keys ${Object.keys(config)}, the file ${keys}`);
        for (const o of outcomes) {
          if (o instanceof UserError) {
            if (o.message.includes('\n')) throw new Error(`error is not one line: ${o.message}`);
            continue;
          }
          resolved++;
          const all: Settings = { ...o.shared, ...o.hp };
          for (const k of keys) if (all[k] !== config[k]) throw new Error(`setting ${k} is ${all[k]}, the file says ${config[k]}`);
        }
      },
      checkError: (e) => {
        if (!e.message.startsWith('--config ') && !e.message.startsWith('cannot read --config ')) throw new Error('error does not name --config');
      },
    },
  );
  expectClean('--config files', stats, 5000);
  expect(resolved).toBeGreaterThan(1000);
});

const MAPPING_SEEDS = ['{"0": "cat", "1": "dog"}', '["airplane", "automobile", "bird"]', '{"1": "b", "0": "a", "2": "c"}', '{}', '[]'].map((s) => Buffer.from(s));

test('--class-mapping files: random and damaged JSON ends in a one-line UserError or the class names in label order', async () => {
  const stats = await runFuzz(
    chain(fuzzInputs({ seeds: MAPPING_SEEDS, mutations: 2500, random: 300, randomMaxBytes: 120, seed: 41 }), randomDocuments(1500, 43)),
    (input) => onDisk(dir, '.json', input.bytes, (file) => ({ names: readClassMapping(file), text: Buffer.from(input.bytes).toString('utf8') })),
    {
      check: ({ names, text }) => {
        const parsed = JSON.parse(text) as unknown;
        const expected = Array.isArray(parsed) ? parsed : Object.keys(parsed as object).sort((a, b) => Number(a) - Number(b)).map((k) => (parsed as Record<string, unknown>)[k]);
        if (names.length === 0 || !names.every((n) => typeof n === 'string')) throw new Error(`names ${JSON.stringify(names)}`);
        if (JSON.stringify(names) !== JSON.stringify(expected)) throw new Error(`names ${JSON.stringify(names)}, the file says ${JSON.stringify(expected)}`);
      },
      checkError: (e) => {
        if (!/--class-mapping/.test(e.message)) throw new Error('error does not name --class-mapping');
      },
    },
  );
  expectClean('--class-mapping files', stats, 4000);
  expect(stats.ok).toBeGreaterThan(50);
});
