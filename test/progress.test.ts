import { Writable } from 'stream';
import { createProgress, fmtDuration } from '../src/util/progress';

function sink(): { stream: Writable & { isTTY?: boolean }; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('createProgress without a terminal', () => {
  it('prints a plain line per interval with ETA and extra fields, and a final line at stop', () => {
    const out = sink();
    let t = 0;
    const p = createProgress('RealMix kimg', 100, { stream: out.stream, tty: false, intervalMs: 1000, now: () => t });
    p.update(10); // first update: starts the clock, prints nothing yet
    t = 500;
    p.update(15);
    t = 1000;
    p.update(20, { loss: 0.12345, 'img/s': 1250 });
    t = 1500;
    p.update(30.5);
    p.log('kimg 30 accuracy 90.00');
    p.stop();
    p.update(99); // ignored after stop
    expect(out.text().split('\n')).toEqual([
      // 10 kimg in 1 s since the first update: 80 left take 8 s
      'RealMix kimg: 20/100 (20%) | ETA 8s | loss 0.1235 | img/s 1250',
      'kimg 30 accuracy 90.00',
      'RealMix kimg: 30.5/100 (30%) | ETA 5s',
      '',
    ]);
  });

  it('prints the line at completion even within the interval, once', () => {
    const out = sink();
    let t = 0;
    const p = createProgress('mnist images', 10, { stream: out.stream, tty: false, now: () => t });
    p.update(0);
    t = 10;
    p.update(10);
    p.stop();
    expect(out.text()).toBe('mnist images: 10/10 (100%) | ETA 0s\n');
  });
});

describe('createProgress on a terminal', () => {
  it('draws a bar with the payload fields and keeps logged lines', () => {
    const out = sink();
    const p = createProgress('train', 4, { stream: out.stream, tty: true });
    p.update(2, { loss: '0.5000' });
    p.log('a line');
    p.stop();
    const text = out.text();
    expect(text).toContain('train [');
    expect(text).toContain('2/4');
    expect(text).toContain('loss 0.5000');
    expect(text).toContain('a line');
  });
});

describe('fmtDuration', () => {
  it('writes seconds, minutes and hours compactly', () => {
    expect(fmtDuration(7)).toBe('7s');
    expect(fmtDuration(62)).toBe('1m02s');
    expect(fmtDuration(3 * 3600 + 5 * 60)).toBe('3h05m');
    expect(fmtDuration(NaN)).toBe('?');
  });
});
