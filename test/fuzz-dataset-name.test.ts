import { formatSplitName, formatTrainDatasetName, parseSplitName, parseTrainDatasetName, type SplitName } from '../src/data/dataset-name';
import { UserError } from '../src/errors';
import { RandomState } from '../src/random';
import { expectClean, fuzzInputs, runFuzz, type FuzzInput } from './helpers/fuzz';

/**
 * Dataset names under damage: every string either parses to a name that formats back to exactly
 * that string (one spelling per dataset), or ends in a one-line UserError quoting it.
 */

const VALID = ['mnist.1@100-1000', 'cifar10.3@250-5000', 'cifar10_aug50.1@4000-1', 'svhn_noextra.0@1000-0', 'stl10.9007199254740991@1-2', 'a.0@1'];
const ALPHABET = 'abz019_.@-Aaug \t\n\u00e9\u4e2d+e';

function* randomNames(count: number, seed: number): Generator<FuzzInput> {
  const rng = new RandomState(seed);
  for (let k = 0; k < count; k++) {
    const n = rng.randint(24);
    let s = '';
    for (let i = 0; i < n; i++) s += ALPHABET[rng.randint(ALPHABET.length)];
    yield { bytes: Buffer.from(s, 'utf8'), how: 'random name' };
  }
}

function* chain(...gens: Iterable<FuzzInput>[]): Generator<FuzzInput> {
  for (const g of gens) yield* g;
}

function checkParts(p: SplitName, s: string): void {
  if (!/^[A-Za-z0-9_]+$/.test(p.name) || !Number.isSafeInteger(p.seed) || !Number.isSafeInteger(p.size) || p.size < 1) throw new Error(`bad parts of "${s}"`);
  const aug = /^(.+)_aug([1-9][0-9]*)$/.exec(p.name);
  if (aug ? p.base !== aug[1] || p.augCopies !== Number(aug[2]) : p.base !== p.name || p.augCopies !== undefined) throw new Error(`bad _aug parts of "${s}"`);
}

for (const kind of ['training', 'split'] as const) {
  test(`${kind} dataset names: random and damaged names parse back exactly or end in a one-line UserError`, async () => {
    const seeds = (kind === 'training' ? VALID : VALID.map((v) => v.replace(/-\d+$/, ''))).map((v) => Buffer.from(v));
    const stats = await runFuzz(
      chain(fuzzInputs({ seeds, mutations: 4000, random: 0, seed: kind === 'training' ? 19 : 23 }), randomNames(2000, 29)),
      (input) => {
        const s = Buffer.from(input.bytes).toString('latin1');
        return { s, parsed: kind === 'training' ? parseTrainDatasetName(s) : parseSplitName(s) };
      },
      {
        check: ({ s, parsed }) => {
          checkParts(parsed, s);
          const back = kind === 'training' ? formatTrainDatasetName(parsed as ReturnType<typeof parseTrainDatasetName>) : formatSplitName(parsed);
          if (back !== s) throw new Error(`"${s}" parses, but formats back as "${back}"`);
        },
        checkError: (e: UserError, input) => {
          if (!e.message.startsWith(`bad ${kind === 'training' ? 'dataset' : 'split'} name `)) throw new Error('unclear error');
          if (!/e\.g\. /.test(e.message)) throw new Error('error shows no example');
          void input;
        },
      },
    );
    expectClean(`${kind} dataset names`, stats, 6000);
    expect(stats.ok).toBeGreaterThan(100);
  });
}
