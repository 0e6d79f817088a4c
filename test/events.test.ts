import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError } from '../src/errors';
import { cleanTag, EventWriter, readEventFile } from '../src/train/events';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-events-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('EventWriter', () => {
  it('writes a TF1-style event file that reads back', () => {
    const before = Date.now() / 1000;
    const w = new EventWriter(dir);
    expect(path.basename(w.path)).toMatch(new RegExp(`^events\\.out\\.tfevents\\.\\d{10}\\.${os.hostname().replace(/[.]/g, '\\.')}$`));
    w.scalars(1024, { accuracy: 91.5, 'losses/xe': 0.25 });
    w.scalar('accuracy', 92.75, 2048);
    w.close();
    const events = readEventFile(w.path);
    expect(events).toHaveLength(3);
    expect(events[0].values).toEqual([]); // the file_version event
    expect(events[0].wallTime).toBeGreaterThanOrEqual(Math.floor(before));
    expect(events.slice(1).map((e) => ({ step: e.step, values: e.values }))).toEqual([
      { step: 1024, values: [{ tag: 'accuracy', value: 91.5 }, { tag: 'losses/xe', value: 0.25 }] },
      { step: 2048, values: [{ tag: 'accuracy', value: 92.75 }] },
    ]);
  });

  it('starts with the file_version event TensorBoard expects', () => {
    const w = new EventWriter(dir);
    w.close();
    const bytes = fs.readFileSync(w.path);
    expect(bytes.includes(Buffer.from('brain.Event:2'))).toBe(true);
  });

  it('stores values as float32, as simple_value is', () => {
    const w = new EventWriter(dir);
    w.scalar('x', 0.1, 1);
    w.close();
    expect(readEventFile(w.path)[1].values[0].value).toBe(Math.fround(0.1));
  });

  it('cleans tags as TensorFlow does', () => {
    expect(cleanTag('accuracy_test/class name:3')).toBe('accuracy_test/class_name_3');
    expect(cleanTag('//losses/xe')).toBe('losses/xe');
    expect(cleanTag('a.b-c_d/E9')).toBe('a.b-c_d/E9');
    const w = new EventWriter(dir);
    w.scalar('f1 score (macro)', 0.5, 3);
    w.close();
    expect(readEventFile(w.path)[1].values[0].tag).toBe('f1_score__macro_');
  });

  it('makes data durable at flush() and appends, never rewrites', () => {
    const w = new EventWriter(dir);
    w.scalar('a', 1, 1);
    const sizeBefore = fs.statSync(w.path).size;
    w.flush();
    const flushed = fs.readFileSync(w.path);
    expect(flushed.length).toBeGreaterThan(sizeBefore);
    expect(readEventFile(w.path)).toHaveLength(2);
    w.scalar('a', 2, 2);
    w.close();
    expect(fs.readFileSync(w.path).subarray(0, flushed.length).equals(flushed)).toBe(true);
    expect(readEventFile(w.path).map((e) => e.step)).toEqual([0, 1, 2]);
  });

  it('never clobbers another writer in the same second', () => {
    const a = new EventWriter(dir);
    const b = new EventWriter(dir);
    a.scalar('a', 1, 1);
    b.scalar('b', 2, 1);
    a.close();
    b.close();
    expect(a.path).not.toBe(b.path);
    expect(readEventFile(a.path)[1].values[0].tag).toBe('a');
    expect(readEventFile(b.path)[1].values[0].tag).toBe('b');
  });
});

describe('readEventFile', () => {
  it('tolerates a truncated last record', () => {
    const w = new EventWriter(dir);
    w.scalar('acc', 1, 1);
    w.scalar('acc', 2, 2);
    w.close();
    const bytes = fs.readFileSync(w.path);
    for (const cut of [1, 5, 17]) {
      fs.writeFileSync(w.path, bytes.subarray(0, bytes.length - cut));
      expect(readEventFile(w.path).map((e) => e.step)).toEqual([0, 1]);
    }
  });

  it('refuses a corrupt record in the middle', () => {
    const w = new EventWriter(dir);
    w.scalar('acc', 1, 1);
    w.scalar('acc', 2, 2);
    w.close();
    const bytes = fs.readFileSync(w.path);
    bytes[bytes.length - 40] ^= 0xff;
    fs.writeFileSync(w.path, bytes);
    expect(() => readEventFile(w.path)).toThrow(UserError);
    expect(() => readEventFile(w.path)).toThrow(/corrupt/);
  });

  it('reads files written by TensorBoard, TF1 simple values and TF2 tensors alike', () => {
    const events = readEventFile(path.join(__dirname, 'fixtures', 'events', 'events.out.tfevents.1700000000.tensorboard'));
    expect(events.map((e) => e.step)).toEqual([0, 1024, 2048, 3072]);
    expect(events[3].wallTime).toBe(1700000003);
    const byTag = (tag: string): number[] => events.flatMap((e) => e.values.filter((v) => v.tag === tag).map((v) => v.value));
    expect(byTag('accuracy')).toEqual([10.5, 50.25, 90.0]);
    expect(byTag('accuracy_test')).toEqual([11.0, 51.5, 91.75]);
    expect(byTag('losses/xe')).toEqual([2.25, 1.0, 0.125]);
  });
});
