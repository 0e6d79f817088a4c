import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeImageExample } from '../src/data/example';
import { encodePngSync } from '../src/data/png';
import { frameRecord, type CorruptRecord } from '../src/data/tfrecord';
import { UserError } from '../src/errors';
import { loadImageSet } from '../src/train/dataset';

test('--skip-corrupt goes past bad framing, bad CRCs and undecodable records, counting each', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-skip-'));
  const good = (k: number) => encodeImageExample(encodePngSync(new Uint8Array(16).fill(k * 20), 4, 4, 1), k);
  const framed = [good(0), good(1), good(2), Uint8Array.from([0xff, 0xff, 0x01]), encodeImageExample(Buffer.from('not a png'), 4), good(5), good(6)].map((r) => frameRecord(r));
  framed[1][12 + 5] ^= 1; // record 1: data CRC
  framed[2][3] ^= 1; // record 2: length field
  const file = path.join(dir, 'd.tfrecord');
  fs.writeFileSync(file, Buffer.concat(framed));
  const offset = (k: number) => framed.slice(0, k).reduce((a, f) => a + f.length, 0);
  await expect(loadImageSet(file)).rejects.toThrow(`${file}: record 1 at byte ${offset(1)} is corrupt (data CRC mismatch)`);
  const seen: CorruptRecord[] = [];
  const set = await loadImageSet(file, { skipCorrupt: true, onCorrupt: (c) => seen.push(c) });
  expect(Array.from(set.labels)).toEqual([0, 5, 6]);
  expect(seen.map((c) => [c.index, c.offset, c.reason.split(':')[0].split(';')[0]])).toEqual([
    [1, offset(1), 'data CRC mismatch'],
    [2, offset(2), 'length CRC mismatch'],
    [3, offset(3), 'cannot be decoded'],
    [4, offset(4), 'cannot be decoded'],
  ]);
  // without --skip-corrupt, an undecodable record names file, index and offset too
  fs.writeFileSync(file, Buffer.concat([framed[0], framed[3]]));
  const err = await loadImageSet(file).catch((e) => e);
  expect(err).toBeInstanceOf(UserError);
  expect(err.message).toMatch(new RegExp(`record 1 at byte ${offset(1)} is corrupt \\(cannot be decoded: not a valid tf\\.train\\.Example .*\\); recreate the file, or pass --skip-corrupt to read past it$`));
  fs.rmSync(dir, { recursive: true });
});
