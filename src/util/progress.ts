import * as cliProgress from 'cli-progress';

/**
 * Progress for long jobs (building datasets, training in kimg): a live bar on a terminal, and on
 * anything else (CI logs, `| tee`) a plain line every so often, since a redrawn bar turns a log
 * file into one enormous line.
 */
export interface Progress {
  /** `done` may be fractional (kimg); `extra` fields (loss, img/s) are shown after the ETA. */
  update(done: number, extra?: Record<string, string | number>): void;
  /** Prints a line above the bar (a bar redraw would otherwise overwrite or split it). */
  log(line: string): void;
  stop(): void;
}

export interface ProgressOptions {
  /** Where to draw; default process.stderr, so stdout stays clean for results. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Draw a live bar; default: whether `stream` is a terminal. */
  tty?: boolean;
  /** Plain mode: least time between two lines (default 10 s). */
  intervalMs?: number;
  /** Plain mode clock, for tests. */
  now?: () => number;
}

function fmtNum(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

function fmtExtra(extra: Record<string, string | number> | undefined): string {
  if (!extra) return '';
  // numbers get 4 significant digits: enough for a loss, no noise for a rate
  const fmt = (v: number): string => (Number.isInteger(v) || !Number.isFinite(v) ? String(v) : v.toPrecision(4));
  return Object.entries(extra)
    .map(([k, v]) => ` | ${k} ${typeof v === 'number' ? fmt(v) : v}`)
    .join('');
}

export function fmtDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, '0')}s`;
  return `${sec}s`;
}

export function createProgress(label: string, total: number, opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? Boolean(stream.isTTY);
  return tty ? barProgress(label, total, stream) : lineProgress(label, total, stream, opts);
}

function barProgress(label: string, total: number, stream: NodeJS.WritableStream): Progress {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      format: `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}{extra}`,
      formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? fmtNum(v) : String(v)),
      hideCursor: true,
      etaBuffer: 20,
      // the caller decided to draw; cli-progress would otherwise stay silent on a stream it doesn't see as a TTY
      noTTYOutput: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const bar = multi.create(total, 0, { extra: '' });
  let stopped = false;
  return {
    update(done, extra) {
      if (!stopped) bar.update(done, { extra: fmtExtra(extra) });
    },
    log(line) {
      if (stopped) stream.write(`${line}\n`);
      else {
        multi.log(`${line}\n`);
        multi.update(); // show it now: cli-progress holds logged lines until its next redraw
      }
    },
    stop() {
      if (stopped) return;
      stopped = true;
      multi.stop();
    },
  };
}

function lineProgress(
  label: string,
  total: number,
  stream: NodeJS.WritableStream,
  opts: ProgressOptions,
): Progress {
  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? 10_000;
  // ETA from the rate since the first update, not since start: a resumed run starts part-way
  let first: { t: number; done: number } | null = null;
  let lastPrint = -Infinity;
  let last: { done: number; extra?: Record<string, string | number> } | null = null;
  let printedDone: number | null = null;
  let stopped = false;
  const print = (t: number): void => {
    if (!last) return;
    const pct = total > 0 ? Math.floor((100 * last.done) / total) : 100;
    let eta = '?';
    if (first && last.done > first.done && t > first.t) {
      eta = fmtDuration(((t - first.t) / 1000 / (last.done - first.done)) * (total - last.done));
    }
    stream.write(`${label}: ${fmtNum(last.done)}/${fmtNum(total)} (${pct}%) | ETA ${eta}${fmtExtra(last.extra)}\n`);
    lastPrint = t;
    printedDone = last.done;
  };
  return {
    update(done, extra) {
      if (stopped) return;
      const t = now();
      if (!first) {
        first = { t, done };
        lastPrint = t; // the first line comes one interval in, not at once
      }
      last = { done, extra };
      if (t - lastPrint >= interval || done >= total) {
        if (printedDone !== done) print(t);
      }
    },
    log(line) {
      stream.write(`${line}\n`);
    },
    stop() {
      if (stopped) return;
      stopped = true;
      if (last && printedDone !== last.done) print(now());
    },
  };
}
