import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { frameRecord, readRecordEntries, type CorruptRecord, type RecordEntry } from '../src/data/tfrecord';
import { UserError } from '../src/errors';
import { expectClean, fuzzInputs, onDisk, repairFraming, runFuzz } from './helpers/fuzz';

/**
 * TFRecord framing under damage: every input either reads, or fails with a UserError naming the
 * file, the record index and the byte offset of the first damaged record; with skipCorrupt the
 * reader never fails, and what it yields and what it reports as corrupt tile the file exactly.
 */

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-fuzz-tfrecord-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const payload = (n: number, k: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + k * 7) & 0xff);
const file = (...lengths: number[]): Uint8Array => Buffer.concat(lengths.map((n, k) => frameRecord(payload(n, k))));

interface Outcome {
  strict: RecordEntry[] | UserError;
  skipped: RecordEntry[];
  corrupt: CorruptRecord[];
  bytes: Buffer;
  file: string;
}

test('TFRecord framing: random and damaged files end in a located error or the intact records', async () => {
  const inputs = fuzzInputs({
    seeds: [file(), file(0), file(3, 0, 40), file(1, 100, 7, 0, 300, 2)],
    mutations: 5000,
    random: 600,
    repair: repairFraming,
    seed: 7,
  });
  let strictOk = 0;
  let skippedRecords = 0;
  const stats = await runFuzz(
    inputs,
    (input): Outcome => onDisk(dir, '.tfrecord', input.bytes, (target) => {
      let strict: RecordEntry[] | UserError;
      try {
        strict = Array.from(readRecordEntries(target));
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        strict = e;
      }
      const corrupt: CorruptRecord[] = [];
      let skipped: RecordEntry[];
      try {
        skipped = Array.from(readRecordEntries(target, { skipCorrupt: true, onCorrupt: (c) => corrupt.push(c) }));
      } catch (e) {
        throw new Error(`skipCorrupt reader threw: ${(e as Error).message}`);
      }
      return { strict, skipped, corrupt, bytes: Buffer.from(input.bytes), file: target };
    }),
    {
      check: (o) => {
        // what skipCorrupt yields is intact, where it says it is
        for (const e of o.skipped) {
          const framed = frameRecord(e.data);
          if (!o.bytes.subarray(e.offset, e.offset + framed.length).equals(framed)) throw new Error(`record ${e.index} is not at byte ${e.offset}`);
        }
        // records and damaged ranges tile the file, in order, one index each
        const pieces = [
          ...o.skipped.map((e) => ({ offset: e.offset, bytes: e.data.length + 16, index: e.index })),
          ...o.corrupt.map((c) => ({ offset: c.offset, bytes: c.bytes, index: c.index })),
        ].sort((a, b) => a.offset - b.offset);
        let at = 0;
        pieces.forEach((p, k) => {
          if (p.offset !== at || p.bytes <= 0 || p.index !== k) throw new Error(`piece ${k} is at byte ${p.offset} index ${p.index}, expected byte ${at} index ${k}`);
          at += p.bytes;
        });
        if (at !== o.bytes.length) throw new Error(`pieces cover ${at} of ${o.bytes.length} bytes`);
        if (o.strict instanceof UserError) {
          // the strict reader stops at the first damage, naming the file, record and byte
          const m = /record (\d+) at byte (\d+) is corrupt/.exec(o.strict.message);
          if (!o.strict.message.startsWith(`${o.file}: `) || !m) throw new Error(`error does not locate the damage: ${o.strict.message}`);
          if (o.corrupt.length === 0 || Number(m[1]) !== o.corrupt[0].index || Number(m[2]) !== o.corrupt[0].offset) {
            throw new Error(`strict error at record ${m[1]} byte ${m[2]}, skipCorrupt saw the first damage at ${JSON.stringify(o.corrupt[0])}`);
          }
          if (!/--skip-corrupt/.test(o.strict.message)) throw new Error('error does not mention --skip-corrupt');
        } else {
          strictOk++;
          if (o.corrupt.length > 0 || o.strict.length !== o.skipped.length) throw new Error('strict read succeeded but skipCorrupt found damage');
        }
        skippedRecords += o.corrupt.length;
      },
    },
  );
  expectClean('TFRecord framing', stats, 6000);
  // the mix must reach both outcomes, and the skipping path, for the checks to mean anything
  expect(strictOk).toBeGreaterThan(100);
  expect(stats.inputs - strictOk).toBeGreaterThan(1000);
  expect(skippedRecords).toBeGreaterThan(1000);
});
