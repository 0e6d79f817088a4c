import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { pyFloat } from '../util/python-float';
import { writeFileAtomic } from '../util/atomic-write';
import { readEventFile } from './events';

/**
 * The originals' scripts/extract_accuracy.py: the median test accuracy over the last 1/10/20/50
 * evaluations of a run, from its TensorBoard event files, saved as `<run>/stats/accuracy.json`.
 * "Median of the last 20" (last20) is the number the papers report.
 */

/** RealMix logs test accuracy as accuracy_test, MixMatch as accuracy; the first one present wins. */
export const DEFAULT_ACCURACY_TAGS = ['accuracy_test', 'accuracy'] as const;
const WINDOWS = { last01: 1, last10: 10, last20: 20, last50: 50 } as const;

export type AccuracyStats = Record<keyof typeof WINDOWS, number>;

export interface ExtractResult {
  path: string;
  tag: string;
  /** Values collected, one per evaluation, in file order. */
  count: number;
  accuracy: AccuracyStats;
}

/** numpy.median: the middle value, or the mean of the two middle values for an even count. */
export function median(values: number[]): number {
  if (values.length === 0) throw new Error('median of no values');
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Median of the last 1/10/20/50 values, or of all when there are fewer. */
export function accuracyStats(values: number[]): AccuracyStats {
  const out = {} as AccuracyStats;
  for (const [k, n] of Object.entries(WINDOWS) as Array<[keyof AccuracyStats, number]>) {
    out[k] = median(values.slice(-n));
  }
  return out;
}

/** json.dumps(d, indent=4, sort_keys=True) for a flat dict of floats. */
export function formatStatsJson(stats: Record<string, number>): string {
  const keys = Object.keys(stats).sort();
  return `{\n${keys.map((k) => `    ${JSON.stringify(k)}: ${pyFloat(stats[k], 'json')}`).join(',\n')}\n}`;
}

function eventFiles(runDir: string): string[] {
  const tfDir = path.join(runDir, 'tf');
  let names: string[] = [];
  try {
    names = fs.readdirSync(tfDir);
  } catch {
    // reported below with the path that was searched
  }
  return names
    .filter((n) => n.startsWith('events.out.tfevents.'))
    .sort()
    .map((n) => path.join(tfDir, n));
}

export function extractAccuracy(runDir: string, opts: { tag?: string } = {}): ExtractResult {
  const files = eventFiles(runDir);
  const pattern = path.join(runDir, 'tf', 'events.out.tfevents.*');
  if (files.length === 0) {
    throw new UserError(`no event files match ${pattern}; \`ssl train\` writes them into <run-dir>/tf/ (is this a run directory?)`);
  }
  const events = files.flatMap((f) => readEventFile(f));
  const wanted = opts.tag ? [opts.tag] : [...DEFAULT_ACCURACY_TAGS];
  const tagsFound = new Set(events.flatMap((e) => e.values.map((v) => v.tag)));
  const tag = wanted.find((t) => tagsFound.has(t));
  if (tag === undefined) {
    const found = [...tagsFound].sort();
    throw new UserError(
      `no ${wanted.map((t) => `'${t}'`).join(' or ')} values in ${pattern}; tags found: ` +
        `${found.length ? found.join(', ') : 'none'}${found.length ? ' (pick one with --tag)' : ''}`,
    );
  }
  // per event, the first value with the tag, as the original takes it
  const values: number[] = [];
  for (const e of events) {
    const v = e.values.find((x) => x.tag === tag);
    if (v) values.push(v.value);
  }
  const accuracy = accuracyStats(values);
  const out = path.join(runDir, 'stats', 'accuracy.json');
  writeFileAtomic(out, formatStatsJson(accuracy));
  return { path: out, tag, count: values.length, accuracy };
}
