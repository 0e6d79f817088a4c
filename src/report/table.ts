import { publishedAccuracy } from './published';
import type { RunRecord } from './runs';

/**
 * The report's rows: one per configuration (dataset, label count, validation size, algorithm and
 * its settings), aggregating its seeds. Accuracies are the runs' `last20` (median test accuracy of
 * the last 20 evaluations), in percent.
 */
export interface ReportRow {
  dataset: string;
  labels: number | null;
  valid: number | null;
  algo: string;
  className: string;
  /** The run name's settings that tell this configuration apart from others of its algorithm (`w_match=75`). */
  settings: string;
  runName: string;
  runs: RunRecord[];
  /** Seeds of the runs that have a last20. */
  seeds: Array<number | null>;
  mean: number | null;
  /** Sample standard deviation (n - 1 denominator, numpy.std(ddof=1)); null below two seeds. */
  std: number | null;
  paper: { accuracy: number; source: string } | null;
  inProgress: number;
  /** Runs with no test accuracy logged yet. */
  noEvaluations: number;
}

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation, as numpy.std(x, ddof=1); NaN for fewer than two values. */
export function sampleStd(xs: number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Groups runs into configurations and computes each one's mean and spread over seeds. */
export function buildRows(runs: RunRecord[]): ReportRow[] {
  const groups = new Map<string, RunRecord[]>();
  for (const r of runs) {
    const key = JSON.stringify([r.name, r.labels, r.valid, r.runName]);
    const g = groups.get(key) ?? [];
    g.push(r);
    groups.set(key, g);
  }
  // settings that vary between configurations of one algorithm are what the settings column shows
  const varying = new Map<string, Set<string>>();
  const byAlgo = new Map<string, RunRecord[]>();
  for (const r of runs) byAlgo.set(r.runName.split('_')[0], [...(byAlgo.get(r.runName.split('_')[0]) ?? []), r]);
  for (const [cls, rs] of byAlgo) {
    const keys = new Set(rs.flatMap((r) => Object.keys(r.kwargs)));
    const v = new Set<string>();
    for (const k of keys) if (new Set(rs.map((r) => JSON.stringify(r.kwargs[k]))).size > 1) v.add(k);
    varying.set(cls, v);
  }
  const rows: ReportRow[] = [];
  for (const g of groups.values()) {
    const first = g[0];
    g.sort((a, b) => (a.seed ?? -1) - (b.seed ?? -1));
    const scored = g.filter((r) => r.accuracy);
    const values = scored.map((r) => (r.accuracy as { last20: number }).last20);
    const std = sampleStd(values);
    const vary = [...(varying.get(first.className) ?? [])].sort();
    rows.push({
      dataset: first.name,
      labels: first.labels,
      valid: first.valid,
      algo: first.algo,
      className: first.className,
      settings: vary.map((k) => `${k}=${String(first.kwargs[k])}`).join(' '),
      runName: first.runName,
      runs: g,
      seeds: scored.map((r) => r.seed),
      mean: values.length ? mean(values) : null,
      std: Number.isNaN(std) ? null : std,
      paper: publishedAccuracy(first.algo, first.name, first.labels),
      inProgress: g.filter((r) => r.inProgress).length,
      noEvaluations: g.length - scored.length,
    });
  }
  const num = (v: number | null) => (v === null ? Infinity : v);
  return rows.sort(
    (a, b) =>
      a.dataset.localeCompare(b.dataset) ||
      num(a.labels) - num(b.labels) ||
      num(a.valid) - num(b.valid) ||
      a.algo.localeCompare(b.algo) ||
      a.settings.localeCompare(b.settings, 'en', { numeric: true }) ||
      a.runName.localeCompare(b.runName),
  );
}

export const COLUMNS = ['dataset', 'labels', 'valid', 'algorithm', 'settings', 'last20 (mean ± std)', 'seeds', 'paper', 'status'] as const;

export function formatAccuracy(row: ReportRow): string {
  if (row.mean === null) return '–';
  return row.std === null ? row.mean.toFixed(2) : `${row.mean.toFixed(2)} ± ${row.std.toFixed(2)}`;
}

export function formatStatus(row: ReportRow): string {
  const parts: string[] = [];
  if (row.inProgress > 0) parts.push(`in progress (${row.inProgress} of ${row.runs.length})`);
  if (row.noEvaluations > 0) parts.push(`${row.noEvaluations} without evaluations yet`);
  return parts.length ? parts.join(', ') : 'finished';
}

/** The row as the table's cells, in COLUMNS order. */
export function rowCells(row: ReportRow, paperRef?: (source: string) => string): string[] {
  return [
    row.dataset,
    row.labels === null ? 'all' : String(row.labels),
    row.valid === null ? '' : String(row.valid),
    row.algo,
    row.settings,
    formatAccuracy(row),
    String(row.seeds.length),
    row.paper ? `${row.paper.accuracy.toFixed(2)}${paperRef ? paperRef(row.paper.source) : ''}` : '',
    formatStatus(row),
  ];
}

/** A plain-text table for the terminal. */
export function formatTextTable(rows: ReportRow[]): string {
  const cells = [COLUMNS.map(String), ...rows.map((r) => rowCells(r))];
  const widths = COLUMNS.map((_, i) => Math.max(...cells.map((c) => [...c[i]].length)));
  const line = (c: string[]) => c.map((v, i) => v + ' '.repeat(widths[i] - [...v].length)).join('  ').trimEnd();
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function sourcesOf(rows: ReportRow[]): string[] {
  return [...new Set(rows.flatMap((r) => (r.paper ? [r.paper.source] : [])))];
}

export function formatMarkdown(rows: ReportRow[], title: string): string {
  const sources = sourcesOf(rows);
  const ref = (s: string) => `[^${sources.indexOf(s) + 1}]`;
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [
    `# ${title}`,
    '',
    'Test accuracy (%): the mean over seeds of each run\'s `last20` (median of its last 20 evaluations), ± the sample standard deviation (n − 1 denominator). ' +
      '"paper" is the published accuracy for the algorithm at that label count (100 − the published error rate), whatever the settings.',
    '',
    `| ${COLUMNS.join(' | ')} |`,
    `| ${COLUMNS.map((c) => (c === 'labels' || c === 'valid' || c === 'seeds' || c.startsWith('last20') || c === 'paper' ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${rowCells(r, ref).map(esc).join(' | ')} |`),
  ];
  if (rows.some((r) => r.inProgress > 0)) out.push('', '"in progress": some runs have not reached their train_kimg yet (still running, or stopped); their last20 is from the evaluations so far.');
  if (sources.length) out.push('', ...sources.map((s, i) => `[^${i + 1}]: ${s}`));
  return out.join('\n') + '\n';
}

function csvCell(v: string | number | null): string {
  if (v === null) return '';
  const s = String(v);
  return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export const CSV_HEADER = ['dataset', 'labels', 'valid', 'algorithm', 'settings', 'run', 'seeds', 'n', 'last20_mean', 'last20_std', 'paper_accuracy', 'paper_source', 'runs', 'in_progress', 'no_evaluations'];

export function formatCsv(rows: ReportRow[]): string {
  const lines = [CSV_HEADER.join(',')];
  for (const r of rows) {
    lines.push(
      [
        r.dataset,
        r.labels,
        r.valid,
        r.algo,
        r.settings,
        r.runName,
        r.seeds.map((s) => (s === null ? '?' : String(s))).join(' '),
        r.seeds.length,
        r.mean === null ? null : r.mean.toFixed(4),
        r.std === null ? null : r.std.toFixed(4),
        r.paper ? r.paper.accuracy.toFixed(2) : null,
        r.paper ? r.paper.source : null,
        r.runs.length,
        r.inProgress,
        r.noEvaluations,
      ]
        .map(csvCell)
        .join(','),
    );
  }
  return lines.join('\n') + '\n';
}
