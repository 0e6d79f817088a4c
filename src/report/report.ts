import * as path from 'path';
import sharp from 'sharp';
import { UserError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';
import { findRunDirs, readRun, RunRecord } from './runs';
import { CurvePanel, renderCurvesSvg } from './svg';
import { buildRows, formatCsv, formatMarkdown, formatTextTable, ReportRow } from './table';

export interface ReportOptions {
  /** The experiments folder (ssl train's --train-dir), or any folder above run directories. */
  root: string;
  /** Where report.md, report.csv, curves.svg and curves.png go (default <root>/report). */
  out?: string;
  /** Scalar tag of the test accuracy (default: accuracy_test, else accuracy). */
  tag?: string;
  log?: (line: string) => void;
}

export interface ReportResult {
  runs: RunRecord[];
  rows: ReportRow[];
  /** Runs whose stats/accuracy.json was missing or stale and was made now. */
  extracted: number;
  files: { markdown: string; csv: string; svg: string; png: string };
  text: string;
}

export function curvePanels(rows: ReportRow[]): CurvePanel[] {
  return rows.map((r) => ({
    title: `${r.dataset}${r.labels === null ? '' : `@${r.labels}`}${r.valid === null ? '' : `-${r.valid}`} ${r.algo}${r.inProgress ? ' (in progress)' : ''}`,
    subtitle: r.settings || undefined,
    xMax: Math.max(0, ...r.runs.map((x) => x.trainKimg ?? 0)),
    series: r.runs.map((x) => ({ label: x.seed === null ? path.basename(path.dirname(x.dir)) : `seed ${x.seed}${x.inProgress ? '*' : ''}`, points: x.curve.map((c) => ({ x: c.kimg, y: c.accuracy })) })),
  }));
}

/**
 * `ssl report`: every run below a folder, its last20 made by extract-accuracy where missing or
 * stale, grouped by configuration with mean ± sample standard deviation over seeds beside the
 * published figure; written as Markdown and CSV, with learning curves as SVG and PNG.
 */
export async function runReport(o: ReportOptions): Promise<ReportResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const root = path.resolve(o.root);
  const dirs = findRunDirs(root);
  if (dirs.length === 0) throw new UserError(`no runs below ${root} (a run directory holds args/args.json, written by ssl train); give the experiments folder`);
  const read = dirs.map((d) => readRun(d, o.tag));
  const runs: RunRecord[] = read.map(({ extracted: _e, ...r }) => r);
  const extracted = read.filter((r) => r.extracted).length;
  const rows = buildRows(runs);
  const outDir = path.resolve(o.out ?? path.join(root, 'report'));
  const title = `ssl report: ${root}`;
  const files = {
    markdown: path.join(outDir, 'report.md'),
    csv: path.join(outDir, 'report.csv'),
    svg: path.join(outDir, 'curves.svg'),
    png: path.join(outDir, 'curves.png'),
  };
  const svg = renderCurvesSvg(curvePanels(rows), 'Test accuracy by kimg, one line per seed');
  writeFileAtomic(files.markdown, formatMarkdown(rows, title));
  writeFileAtomic(files.csv, formatCsv(rows));
  writeFileAtomic(files.svg, svg);
  writeFileAtomic(files.png, await sharp(Buffer.from(svg)).png().toBuffer());
  const text = formatTextTable(rows);
  log(text);
  if (rows.some((r) => r.inProgress > 0)) log('in progress: runs short of their train_kimg (still running, or stopped); their last20 is from the evaluations so far');
  const known = rows.filter((r) => r.paper);
  if (known.length) log('paper: published accuracy for the algorithm at that label count (sources in report.md)');
  log(`${runs.length} run${runs.length === 1 ? '' : 's'} in ${rows.length} configuration${rows.length === 1 ? '' : 's'}${extracted ? `; stats/accuracy.json made for ${extracted}` : ''}`);
  log(`Wrote ${files.markdown}, ${path.basename(files.csv)}, ${path.basename(files.svg)}, ${path.basename(files.png)}`);
  return { runs, rows, extracted, files, text };
}
