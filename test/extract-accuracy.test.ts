import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError } from '../src/errors';
import { EventWriter } from '../src/train/events';
import { extractAccuracy, formatStatsJson, median } from '../src/train/extract-accuracy';

let run: string;
beforeEach(() => {
  run = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-extract-'));
});
afterEach(() => fs.rmSync(run, { recursive: true, force: true }));

/** One event file in <run>/tf holding `tag` = values[i] at step i+1, plus a noise tag in each event. */
function writeRun(values: number[], tag = 'accuracy', extra: Record<string, number> = { 'losses/xe': 0.5 }): void {
  const w = new EventWriter(path.join(run, 'tf'));
  values.forEach((v, i) => w.scalars(i + 1, { ...extra, [tag]: v }));
  w.close();
}

const readJson = (): unknown => JSON.parse(fs.readFileSync(path.join(run, 'stats', 'accuracy.json'), 'utf8'));

describe('median', () => {
  it('follows numpy: middle value, or the mean of the two middle values', () => {
    expect(median([3])).toBe(3);
    expect(median([5, 1, 4, 2, 3])).toBe(3);
    expect(median([10, 1, 9, 2, 8, 3, 7, 4, 6, 5])).toBe(5.5);
    expect(median([1, 2])).toBe(1.5);
  });
});

describe('extractAccuracy', () => {
  it('with 1 value, every window is that value', () => {
    writeRun([87.5]);
    const r = extractAccuracy(run);
    expect(r.accuracy).toEqual({ last01: 87.5, last10: 87.5, last20: 87.5, last50: 87.5 });
    expect(r.path).toBe(path.join(run, 'stats', 'accuracy.json'));
    expect(readJson()).toEqual(r.accuracy);
  });

  it('with 9 values, windows larger than the run take all values', () => {
    writeRun([5, 1, 4, 2, 3, 9, 8, 7, 6]);
    expect(extractAccuracy(run).accuracy).toEqual({ last01: 6, last10: 5, last20: 5, last50: 5 });
  });

  it('with 25 values, even windows average their two middle values', () => {
    writeRun(Array.from({ length: 25 }, (_, i) => i + 1)); // 1..25
    // last 10 = 16..25 -> 20.5; last 20 = 6..25 -> 15.5; all 25 -> 13
    expect(extractAccuracy(run).accuracy).toEqual({ last01: 25, last10: 20.5, last20: 15.5, last50: 13 });
  });

  it('with 60 values, last50 drops the first 10', () => {
    // descending, so the oldest values are the largest: a window that kept them would be off
    writeRun(Array.from({ length: 60 }, (_, i) => 60 - i)); // 60..1
    // last 50 = 50..1 -> 25.5; last 20 = 20..1 -> 10.5; last 10 = 10..1 -> 5.5
    expect(extractAccuracy(run).accuracy).toEqual({ last01: 1, last10: 5.5, last20: 10.5, last50: 25.5 });
  });

  it('writes json.dumps(indent=4, sort_keys=True) output', () => {
    writeRun([93, 92, 91.5]);
    extractAccuracy(run);
    expect(fs.readFileSync(path.join(run, 'stats', 'accuracy.json'), 'utf8')).toBe(
      '{\n    "last01": 91.5,\n    "last10": 92.0,\n    "last20": 92.0,\n    "last50": 92.0\n}',
    );
    expect(formatStatsJson({ b: 1, a: 0.1 })).toBe('{\n    "a": 0.1,\n    "b": 1.0\n}');
  });

  it('prefers accuracy_test (RealMix) over accuracy (MixMatch), and honours --tag', () => {
    const w = new EventWriter(path.join(run, 'tf'));
    w.scalars(1, { accuracy: 10, accuracy_test: 50 });
    w.scalars(2, { accuracy: 20, accuracy_test: 60 });
    w.close();
    expect(extractAccuracy(run)).toMatchObject({ tag: 'accuracy_test', accuracy: { last01: 60, last10: 55 } });
    expect(extractAccuracy(run, { tag: 'accuracy' })).toMatchObject({ tag: 'accuracy', accuracy: { last01: 20, last10: 15 } });
  });

  it('reads every event file in sorted name order', () => {
    const tf = path.join(run, 'tf');
    fs.mkdirSync(tf);
    const later = new EventWriter(tf);
    later.scalar('accuracy', 3, 3);
    later.close();
    const earlier = new EventWriter(tf);
    earlier.scalar('accuracy', 1, 1);
    earlier.close();
    // make `earlier` sort first whatever second the writers started in
    fs.renameSync(earlier.path, path.join(tf, 'events.out.tfevents.0000000001.a'));
    fs.renameSync(later.path, path.join(tf, 'events.out.tfevents.0000000002.a'));
    expect(extractAccuracy(run).accuracy.last01).toBe(3);
    expect(extractAccuracy(run).count).toBe(2);
  });

  it('reads event files written by TensorBoard itself', () => {
    fs.mkdirSync(path.join(run, 'tf'));
    const name = 'events.out.tfevents.1700000000.tensorboard';
    fs.copyFileSync(path.join(__dirname, 'fixtures', 'events', name), path.join(run, 'tf', name));
    expect(extractAccuracy(run).accuracy).toEqual({ last01: 91.75, last10: 51.5, last20: 51.5, last50: 51.5 });
  });

  it('says where it looked when there are no event files', () => {
    expect(() => extractAccuracy(run)).toThrow(UserError);
    expect(() => extractAccuracy(run)).toThrow(`no event files match ${path.join(run, 'tf', 'events.out.tfevents.*')}; \`ssl train\` writes them`);
  });

  it('lists the tags it found when none matches', () => {
    writeRun([1, 2], 'accuracy/valid');
    expect(() => extractAccuracy(run)).toThrow(
      /no 'accuracy_test' or 'accuracy' values in .*; tags found: accuracy\/valid, losses\/xe \(pick one with --tag\)/,
    );
    expect(() => extractAccuracy(run, { tag: 'nope' })).toThrow(/no 'nope' values/);
    expect(fs.existsSync(path.join(run, 'stats'))).toBe(false);
  });
});
