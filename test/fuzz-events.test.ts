import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { frameRecord, readAllRecords } from '../src/data/tfrecord';
import { UserError } from '../src/errors';
import { RandomState } from '../src/random';
import { EventWriter, readEventFile, type ScalarEvent } from '../src/train/events';
import { expectClean, fuzzInputs, mutate, onDisk, repairFraming, runFuzz, type FuzzInput } from './helpers/fuzz';

/**
 * TensorBoard event files under damage: every input ends in a UserError naming the file, or in
 * well-formed events. Damage goes in at the file level (framing, with CRCs sometimes repaired)
 * and inside single Event protos re-framed with good CRCs, so that it reaches the decoder.
 */

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-fuzz-events-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function writtenFile(steps: number): Buffer {
  const sub = fs.mkdtempSync(path.join(dir, 'w-'));
  const w = new EventWriter(sub);
  for (let s = 1; s <= steps; s++) w.scalars(s * 1024, { accuracy: s / 10, 'losses/xe': 2 / s, 'bad tag!': -s });
  w.close();
  return fs.readFileSync(w.path);
}

/** One Event of a file damaged, every record re-framed with good CRCs. */
function* payloadMutations(files: Buffer[], count: number, seed: number): Generator<FuzzInput> {
  const rng = new RandomState(seed);
  const recordsOf = files.map((f) => onDisk(dir, '.ev', f, (file) => readAllRecords(file)));
  const payloads = recordsOf.flat();
  for (let k = 0; k < count; k++) {
    const f = rng.randint(files.length);
    const recs = recordsOf[f].slice();
    const r = rng.randint(recs.length);
    const m = mutate(rng, recs[r], payloads);
    recs[r] = m.bytes;
    yield { bytes: Buffer.concat(recs.map((p) => frameRecord(p))), how: `file ${f} event ${r}: ${m.how}` };
  }
}

function* chain(...gens: Iterable<FuzzInput>[]): Generator<FuzzInput> {
  for (const g of gens) yield* g;
}

test('event files: random and damaged files end in a UserError naming the file or well-formed events', async () => {
  const seeds = [writtenFile(0), writtenFile(3), fs.readFileSync(path.join(__dirname, 'fixtures', 'events', 'events.out.tfevents.1700000000.tensorboard'))];
  const inputs = chain(
    fuzzInputs({ seeds, mutations: 2500, random: 400, randomMaxBytes: 300, repair: repairFraming, seed: 13 }),
    payloadMutations(seeds, 3000, 17),
  );
  let events = 0;
  const stats = await runFuzz(
    inputs,
    (input) =>
      onDisk(dir, '.tfevents', input.bytes, (file): ScalarEvent[] => {
        try {
          return readEventFile(file);
        } catch (e) {
          if (e instanceof UserError && !e.message.startsWith(`${file}: `)) throw new Error(`error does not name the file: ${e.message}`);
          throw e;
        }
      }),
    {
      check: (evs) => {
        for (const ev of evs) {
          if (typeof ev.wallTime !== 'number' || typeof ev.step !== 'number' || !Array.isArray(ev.values)) throw new Error(`ill-formed event ${JSON.stringify(ev)}`);
          for (const v of ev.values) if (typeof v.tag !== 'string' || typeof v.value !== 'number') throw new Error(`ill-formed value ${JSON.stringify(v)}`);
          events++;
        }
      },
      checkError: (e) => {
        if (!/(event record \d+ at byte \d+|cannot read)/.test(e.message)) throw new Error('error does not locate the damage');
      },
    },
  );
  expectClean('event files', stats, 6000);
  expect(stats.ok).toBeGreaterThan(1000);
  expect(stats.rejected).toBeGreaterThan(1000);
  expect(events).toBeGreaterThan(2000);
});
