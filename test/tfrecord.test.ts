import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { crc32c, maskedCrc32c } from '../src/data/crc32c';
import { frameRecord, MAX_RECORD_BYTES, readAllRecords, readRecordEntries, readRecords, RecordWriter, writeRecords, type CorruptRecord } from '../src/data/tfrecord';
import { UserError } from '../src/errors';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-tfrecord-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('crc32c', () => {
  it('matches the published check value', () => {
    expect(crc32c(enc('123456789'))).toBe(0xe3069283);
  });

  it('agrees between the sliced fast path and a byte-at-a-time reference on odd lengths', () => {
    const data = new Uint8Array(1037);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
    let crc = 0xffffffff;
    for (const b of data) {
      crc ^= b;
      for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    }
    expect(crc32c(data)).toBe((crc ^ 0xffffffff) >>> 0);
    expect(crc32c(data, 5, 1000)).toBe(crc32c(data.slice(5, 1000)));
  });

  it('masks as TensorFlow does', () => {
    // values from TensorBoard's own masked_crc32c
    expect(maskedCrc32c(new Uint8Array(0))).toBe(0xa282ead8);
    expect(maskedCrc32c(enc('abc'))).toBe(0x21f1576e);
  });
});

describe('TFRecord framing', () => {
  const payloads = [enc('first'), new Uint8Array(0), enc('x'.repeat(3000)), Uint8Array.from([0, 255, 1])];

  it("frames a record byte for byte as TensorBoard's RecordWriter does", () => {
    expect(frameRecord(enc('abc')).toString('hex')).toBe('0300000000000000b099490e6162636e57f121');
  });

  it('frames as length | masked crc(length) | data | masked crc(data)', () => {
    const f = frameRecord(enc('abc'));
    expect(f.length).toBe(12 + 3 + 4);
    expect(f.readBigUInt64LE(0)).toBe(3n);
    expect(f.readUInt32LE(8)).toBe(maskedCrc32c(f, 0, 8));
    expect(f.subarray(12, 15).toString()).toBe('abc');
    expect(f.readUInt32LE(15)).toBe(maskedCrc32c(enc('abc')));
  });

  it('round-trips records through a file', () => {
    const file = path.join(dir, 'a.tfrecord');
    expect(writeRecords(file, payloads)).toBe(payloads.length);
    const back = readAllRecords(file);
    expect(back.map((r) => Buffer.from(r).toString('hex'))).toEqual(payloads.map((p) => Buffer.from(p).toString('hex')));
  });

  it('leaves no target file when a writer is aborted', () => {
    const file = path.join(dir, 'b.tfrecord');
    const w = new RecordWriter(file);
    w.write(enc('partial'));
    w.abort();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('names the file, record index and byte offset of a flipped byte', () => {
    const file = path.join(dir, 'c.tfrecord');
    writeRecords(file, payloads);
    const bytes = fs.readFileSync(file);
    const offset2 = frameRecord(payloads[0]).length + frameRecord(payloads[1]).length;
    bytes[offset2 + 12 + 100] ^= 0x01; // inside record 2's data
    fs.writeFileSync(file, bytes);
    let err: unknown;
    try {
      readAllRecords(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg).toContain(file);
    expect(msg).toContain('record 2');
    expect(msg).toContain(`byte ${offset2}`);
  });

  it('reads past a corrupt record with skipCorrupt and reports it', () => {
    const file = path.join(dir, 'd.tfrecord');
    writeRecords(file, payloads);
    const bytes = fs.readFileSync(file);
    bytes[12 + 1] ^= 0xff; // record 0's data
    fs.writeFileSync(file, bytes);
    const seen: CorruptRecord[] = [];
    const back = Array.from(readRecords(file, { skipCorrupt: true, onCorrupt: (c) => seen.push(c) }));
    expect(back).toHaveLength(payloads.length - 1);
    expect(Buffer.from(back[0]).equals(Buffer.from(payloads[1]))).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ index: 0, offset: 0 });
  });

  it('reports a truncated final record', () => {
    const file = path.join(dir, 'e.tfrecord');
    writeRecords(file, payloads);
    const bytes = fs.readFileSync(file);
    fs.writeFileSync(file, bytes.subarray(0, bytes.length - 2));
    expect(() => readAllRecords(file)).toThrow(/record 3 .*truncated/);
    const seen: CorruptRecord[] = [];
    expect(readAllRecords(file, { skipCorrupt: true, onCorrupt: (c) => seen.push(c) })).toHaveLength(3);
    expect(seen[0].reason).toMatch(/truncated/);
  });

  it('says clearly when the file does not exist', () => {
    expect(() => readAllRecords(path.join(dir, 'missing.tfrecord'))).toThrow(/missing\.tfrecord: no such file/);
  });

  it('gives each record with its index and byte offset', () => {
    const file = path.join(dir, 'f.tfrecord');
    writeRecords(file, payloads);
    const entries = Array.from(readRecordEntries(file));
    let offset = 0;
    entries.forEach((e, k) => {
      expect([e.index, e.offset, Buffer.from(e.data).equals(Buffer.from(payloads[k]))]).toEqual([k, offset, true]);
      offset += 16 + payloads[k].length;
    });
  });

  it('after a damaged length field, skipCorrupt finds the next intact record and counts the damage once', () => {
    const file = path.join(dir, 'g.tfrecord');
    const recs = Array.from({ length: 6 }, (_, k) => enc(`record ${k} `.repeat(k + 1)));
    writeRecords(file, recs);
    const bytes = fs.readFileSync(file);
    const at = (k: number): number => recs.slice(0, k).reduce((a, r) => a + r.length + 16, 0);
    bytes[at(1) + 2] ^= 0x40; // record 1's length field
    bytes[at(4) + 12 + 3] ^= 0x01; // record 4's data
    fs.writeFileSync(file, bytes);
    expect(() => readAllRecords(file)).toThrow(`${file}: record 1 at byte ${at(1)} is corrupt (length CRC mismatch; skipped ${at(2) - at(1)} bytes to the next intact record at byte ${at(2)}); recreate the file, or pass --skip-corrupt to read past it`);
    const seen: CorruptRecord[] = [];
    const back = Array.from(readRecordEntries(file, { skipCorrupt: true, onCorrupt: (c) => seen.push(c) }));
    expect(back.map((e) => [e.index, e.offset, Buffer.from(e.data).toString()])).toEqual([0, 2, 3, 5].map((k) => [k, at(k), Buffer.from(recs[k]).toString()]));
    expect(seen.map((c) => [c.index, c.offset, c.bytes])).toEqual([[1, at(1), at(2) - at(1)], [4, at(4), recs[4].length + 16]]);
    expect(seen[1].reason).toBe('data CRC mismatch');
  });

  it('a damaged length field with nothing intact after it ends the read, counted once', () => {
    const file = path.join(dir, 'h.tfrecord');
    writeRecords(file, payloads);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 7 - 12] ^= 0xff; // the last record's length field (its data is 3 bytes)
    fs.writeFileSync(file, bytes);
    const seen: CorruptRecord[] = [];
    expect(readAllRecords(file, { skipCorrupt: true, onCorrupt: (c) => seen.push(c) })).toHaveLength(3);
    expect(seen).toHaveLength(1);
    expect(seen[0].reason).toBe('length CRC mismatch; no intact record follows');
    expect(seen[0].offset + seen[0].bytes).toBe(bytes.length);
  });

  it('refuses a huge length field before allocating anything for it, even with a valid CRC', () => {
    const file = path.join(dir, 'i.tfrecord');
    const head = Buffer.alloc(12);
    head.writeBigUInt64LE(1n << 60n, 0);
    head.writeUInt32LE(maskedCrc32c(head, 0, 8), 8);
    fs.writeFileSync(file, Buffer.concat([frameRecord(enc('ok')), head, Buffer.alloc(100)]));
    const allocs: number[] = [];
    const orig = Buffer.allocUnsafe;
    const spy = jest.spyOn(Buffer, 'allocUnsafe').mockImplementation((n: number) => {
      allocs.push(n);
      return orig(n);
    });
    try {
      expect(() => readAllRecords(file)).toThrow(`record 1 at byte 18 is corrupt (length 1152921504606846976 exceeds the ${MAX_RECORD_BYTES}-byte record limit; no intact record follows)`);
    } finally {
      spy.mockRestore();
    }
    expect(Math.max(...allocs)).toBeLessThanOrEqual(fs.statSync(file).size);
  });

  it('says clearly when the path is a directory', () => {
    expect(() => readAllRecords(dir)).toThrow(`cannot read ${dir}: it is a directory`);
  });

  it('refuses to write through a closed writer, and close and abort may be repeated', () => {
    const w = new RecordWriter(path.join(dir, 'j.tfrecord'));
    w.write(enc('a'));
    w.close();
    w.close();
    expect(() => w.write(enc('b'))).toThrow(/closed/);
    w.abort(); // after close: leaves the finished file alone
    expect(readAllRecords(path.join(dir, 'j.tfrecord'))).toHaveLength(1);
  });
});

