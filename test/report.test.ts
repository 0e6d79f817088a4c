import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { EventWriter } from '../src/train/events';
import { runReport } from '../src/report/report';
import { buildRows, CSV_HEADER, mean, sampleStd } from '../src/report/table';
import { niceTicks, renderCurvesSvg } from '../src/report/svg';
import { publishedAccuracy } from '../src/report/published';

/**
 * ssl report on synthetic run directories written in the genuine formats: args/args.json,
 * TensorBoard event files (EventWriter) and checkpoint names, as ssl train leaves them.
 */
const CLI = path.join(__dirname, '..', 'dist', 'bin', 'ssl.js');

interface FakeRun {
  dataset: string;
  algo: string;
  className: string;
  kwargs: Record<string, number | string>;
  trainKimg: number;
  /** test accuracy per evaluation, one every kimg */
  accuracies: number[];
  tag?: string;
  checkpointKimg?: number;
}

function runName(r: FakeRun): string {
  return [r.className, ...Object.keys(r.kwargs).sort().map((k) => `${k}${r.kwargs[k]}`)].join('_');
}

function writeRun(root: string, r: FakeRun): string {
  const dir = path.join(root, r.dataset, runName(r));
  fs.mkdirSync(path.join(dir, 'args'), { recursive: true });
  const args = { algo: r.algo, dataset: r.dataset, model: runName(r), kwargs: r.kwargs, train_kimg: r.trainKimg };
  fs.writeFileSync(path.join(dir, 'args', 'args.json'), JSON.stringify(args, null, 4));
  const tf = path.join(dir, 'tf');
  fs.mkdirSync(tf, { recursive: true });
  if (r.accuracies.length > 0) {
    const w = new EventWriter(tf);
    r.accuracies.forEach((a, i) => w.scalars((i + 1) * 1024, { [r.tag ?? 'accuracy']: a, 'accuracy/train_labeled': 100 }));
    w.close();
  }
  const ck = r.checkpointKimg ?? r.accuracies.length;
  if (ck > 0) fs.writeFileSync(path.join(tf, `model.ckpt-${String(ck * 1024).padStart(8, '0')}.sslckpt`), 'x');
  return dir;
}

const W75 = { arch: 'resnet', batch: 64, beta: 0.75, nclass: 10, w_match: 75 };
const W100 = { arch: 'resnet', batch: 64, beta: 0.75, nclass: 10, w_match: 100 };

describe('ssl report', () => {
  let tmp: string;
  let exp: string;
  const dirs: Record<string, string> = {};

  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-report-'));
    exp = path.join(tmp, 'experiments');
    // three seeds whose last20 (median of all 4 values) are 65, 67 and 69
    for (const [seed, shift] of [[1, 0], [2, 2], [3, 4]]) {
      dirs[`mm${seed}`] = writeRun(exp, { dataset: `cifar10.${seed}@250-5000`, algo: 'mixmatch', className: 'MixMatch', kwargs: W75, trainKimg: 4, accuracies: [50, 60, 70, 80].map((a) => a + shift) });
    }
    // another configuration of the same algorithm, one seed, still in progress (2 of 4 kimg)
    dirs.w100 = writeRun(exp, { dataset: 'cifar10.1@250-5000', algo: 'mixmatch', className: 'MixMatch', kwargs: W100, trainKimg: 4, accuracies: [40, 44] });
    // a RealMix-style run (accuracy_test tag) at 4000 labels, and one just started with no evaluation
    dirs.rm1 = writeRun(exp, { dataset: 'cifar10.1@4000-5000', algo: 'realmix', className: 'RealMix', kwargs: { arch: 'resnet', nclass: 10 }, trainKimg: 3, accuracies: [90, 92, 93], tag: 'accuracy_test' });
    dirs.rm2 = writeRun(exp, { dataset: 'cifar10.2@4000-5000', algo: 'realmix', className: 'RealMix', kwargs: { arch: 'resnet', nclass: 10 }, trainKimg: 3, accuracies: [], checkpointKimg: 0 });
    // fully supervised baseline
    dirs.fs = writeRun(exp, { dataset: 'cifar10-5000', algo: 'supervised', className: 'FSBaseline', kwargs: { arch: 'resnet', nclass: 10 }, trainKimg: 2, accuracies: [80, 81] });
    // a stale accuracy.json (older than the events) is remade; a fresh one is trusted as it is
    const stale = path.join(dirs.mm1, 'stats', 'accuracy.json');
    fs.mkdirSync(path.dirname(stale), { recursive: true });
    fs.writeFileSync(stale, JSON.stringify({ last01: 1, last10: 1, last20: 1, last50: 1 }));
    const past = new Date(Date.now() - 3600_000);
    fs.utimesSync(stale, past, past);
    const fresh = path.join(dirs.fs, 'stats', 'accuracy.json');
    fs.mkdirSync(path.dirname(fresh), { recursive: true });
    fs.writeFileSync(fresh, JSON.stringify({ last01: 77, last10: 77, last20: 77, last50: 77 }));
    const future = new Date(Date.now() + 3600_000);
    fs.utimesSync(fresh, future, future);
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  test('mean and sample standard deviation agree with numpy (ddof=1)', () => {
    const xs = [65, 67, 69.5, 71.25];
    const np = execFileSync('python3', ['-c', `import numpy as np; x=np.array(${JSON.stringify(xs)}); print(repr(float(x.mean())), repr(float(x.std(ddof=1))))`], { encoding: 'utf8' })
      .trim()
      .split(' ')
      .map(Number);
    expect(mean(xs)).toBeCloseTo(np[0], 12);
    expect(sampleStd(xs)).toBeCloseTo(np[1], 12);
    expect(Number.isNaN(sampleStd([1]))).toBe(true);
  });

  test('groups runs by configuration, with mean ± std over seeds, paper figures, in-progress marks and files', async () => {
    const lines: string[] = [];
    const r = await runReport({ root: exp, log: (l) => lines.push(l) });
    expect(r.runs).toHaveLength(7);
    // mm1's stale stats, mm2, mm3, w100 and rm1 had none or stale ones; rm2 has no evaluations; fs's is fresh
    expect(r.extracted).toBe(5);
    expect(JSON.parse(fs.readFileSync(path.join(dirs.mm1, 'stats', 'accuracy.json'), 'utf8')).last20).toBe(65);
    expect(JSON.parse(fs.readFileSync(path.join(dirs.fs, 'stats', 'accuracy.json'), 'utf8')).last20).toBe(77);

    const find = (algo: string, labels: number | null, settings = '') => r.rows.find((x) => x.algo === algo && x.labels === labels && x.settings === settings);
    const mm = find('mixmatch', 250, 'w_match=75');
    expect(mm).toBeDefined();
    expect(mm!.seeds).toEqual([1, 2, 3]);
    expect(mm!.mean).toBeCloseTo(67, 10);
    expect(mm!.std).toBeCloseTo(2, 10); // numpy.std(ddof=0) would give 1.633
    expect(mm!.paper?.accuracy).toBeCloseTo(88.92, 10);
    expect(mm!.inProgress).toBe(0);
    const w100 = find('mixmatch', 250, 'w_match=100');
    expect(w100!.mean).toBe(42);
    expect(w100!.std).toBeNull();
    expect(w100!.inProgress).toBe(1);
    const rm = find('realmix', 4000);
    expect(rm!.mean).toBe(92);
    expect(rm!.noEvaluations).toBe(1);
    expect(rm!.inProgress).toBe(1);
    expect(rm!.paper?.accuracy).toBeCloseTo(93.62, 10);
    const fsb = find('supervised', null);
    expect(fsb!.mean).toBe(77);
    expect(fsb!.paper).toBeNull();
    // sorted by dataset, label count (fully supervised last), algorithm, settings (numbers by value)
    expect(r.rows.map((x) => [x.labels, x.settings])).toEqual([[250, 'w_match=75'], [250, 'w_match=100'], [4000, ''], [null, '']]);

    const md = fs.readFileSync(r.files.markdown, 'utf8');
    expect(md).toContain('| cifar10 | 250 | 5000 | mixmatch | w_match=75 | 67.00 ± 2.00 | 3 | 88.92[^1] | finished |');
    expect(md).toContain('| cifar10 | 250 | 5000 | mixmatch | w_match=100 | 42.00 | 1 | 88.92[^1] | in progress (1 of 1) |');
    expect(md).toMatch(/\| cifar10 \| 4000 \| 5000 \| realmix \|  \| 92\.00 \| 1 \| 93\.62\[\^2\] \| in progress \(1 of 2\), 1 without evaluations yet \|/);
    expect(md).toMatch(/^\[\^1\]: Berthelot et al\. 2019.*arXiv:1905\.02249/m);
    expect(md).toMatch(/^\[\^2\]: Nair.*arXiv:1912\.08766/m);

    const csv = fs.readFileSync(r.files.csv, 'utf8').trim().split('\n');
    expect(csv[0]).toBe(CSV_HEADER.join(','));
    expect(csv).toHaveLength(5);
    const cells = csv[1].split(',');
    const col = (name: string) => cells[CSV_HEADER.indexOf(name)];
    expect([col('dataset'), col('labels'), col('algorithm'), col('seeds'), col('n'), col('last20_mean'), col('last20_std'), col('paper_accuracy')]).toEqual(['cifar10', '250', 'mixmatch', '1 2 3', '3', '67.0000', '2.0000', '88.92']);

    // the terminal table holds the same rows
    expect(r.text.split('\n')).toHaveLength(2 + 4);
    expect(lines.join('\n')).toMatch(/67\.00 ± 2\.00/);

    // learning curves: one panel per configuration, one line per seed that has evaluations
    const svg = fs.readFileSync(r.files.svg, 'utf8');
    expect(svg.match(/<polyline class="series"/g)).toHaveLength(6);
    expect(svg).toContain('cifar10@250-5000 mixmatch (in progress)');
    expect(svg).toContain('no evaluations yet');
    execFileSync('python3', ['-c', 'import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1])', r.files.svg]);
    const meta = await sharp(r.files.png).metadata();
    expect(meta.format).toBe('png');
    const [, w, h] = /width="(\d+)" height="(\d+)"/.exec(svg) ?? [];
    expect([meta.width, meta.height]).toEqual([Number(w), Number(h)]);
  });

  test('curve points follow the event steps (kimg) and values', () => {
    const svg = renderCurvesSvg([{ title: 't', series: [{ label: 'seed 1', points: [{ x: 0, y: 50 }, { x: 10, y: 100 }] }] }]);
    const pts = /points="([^"]+)"/.exec(svg)![1].split(' ').map((p) => p.split(',').map(Number));
    // first point at the plot's bottom-left corner, last at its top-right
    expect(pts[0][0]).toBeLessThan(pts[1][0]);
    expect(pts[0][1]).toBeGreaterThan(pts[1][1]);
    expect(niceTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(42.3, 97.1)).toEqual([40, 60, 80, 100]);
    expect(niceTicks(91.5, 93.2)).toEqual([91.5, 92, 92.5, 93, 93.5]);
    expect(svg).not.toMatch(/NaN|undefined/);
  });

  test('published figures: error rates become accuracies; aug-copy datasets use their base', () => {
    expect(publishedAccuracy('mixmatch', 'cifar10', 4000)?.accuracy).toBeCloseTo(93.76, 10);
    expect(publishedAccuracy('realmix', 'cifar10_aug50', 250)?.accuracy).toBeCloseTo(90.21, 10);
    expect(publishedAccuracy('fixmatch', 'cifar10', 250)?.accuracy).toBe(94.93);
    expect(publishedAccuracy('mixmatch', 'cifar10', 500)).toBeNull();
    expect(publishedAccuracy('mixmatch', 'cifar10', null)).toBeNull();
  });

  test('rows of runs with no seed number and the settings column', () => {
    const base = { dir: '/x', className: 'MixMatch', algo: 'mixmatch', dataset: 'd', name: 'd', labels: 10, valid: 5, trainKimg: 1, imagesSeen: 1024, inProgress: false, curve: [] };
    const rows = buildRows([
      { ...base, runName: 'MixMatch_a1', kwargs: { a: 1, b: 2 }, seed: 1, accuracy: { last01: 1, last10: 1, last20: 10, last50: 1 } },
      { ...base, runName: 'MixMatch_a2', kwargs: { a: 2, b: 2 }, seed: 1, accuracy: { last01: 1, last10: 1, last20: 20, last50: 1 } },
    ]);
    expect(rows.map((r) => r.settings)).toEqual(['a=1', 'a=2']);
  });

  test('through the CLI: the table on stdout, and one error line for a folder without runs', () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p .\` (npm test does)`);
    const ok = spawnSync(process.execPath, [CLI, 'report', exp, '--out', path.join(tmp, 'out')], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^dataset +labels +valid +algorithm/m);
    for (const f of ['report.md', 'report.csv', 'curves.svg', 'curves.png']) expect(fs.existsSync(path.join(tmp, 'out', f))).toBe(true);
    const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
    const bad = spawnSync(process.execPath, [CLI, 'report', empty], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ssl: no runs below .*args\/args\.json/)]);
  });
});
