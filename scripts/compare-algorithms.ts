/**
 * Every registered algorithm on the embedded MNIST digits with 100 labels, each with the same
 * budget, side by side: the demo's workflow (ssl demo) widened to the whole algorithm zoo.
 *
 *   npm run build && node dist/scripts/compare-algorithms.js [options]
 *
 *   --train-kimg <n>    budget of every run in kimg of labelled images (default 64, as the demo)
 *   --algos <list>      comma-separated subset (default: every registered algorithm)
 *   --data-dir <dir>    data root (default: $ML_DATA, else ./data)
 *   --train-dir <dir>   where run directories go (default ./experiments/compare)
 *   --backend <name>    tensorflow, wasm, cpu or auto
 *   --json <file>       also write the table as JSON
 *
 * Every run uses the small CNN of Temporal Ensembling (te_cnn), batch 64, 16 evaluations of the EMA
 * weights (decay 0.99, which suits short runs) and the algorithm's own defaults, except where a
 * default is tied to the originals' 2^26-image schedule: MixMatch's and RealMix's ramp of the
 * unlabelled weight (1024 kimg) becomes a quarter of the budget, as in the demo, with the
 * CIFAR-10 settings beta 0.75 and w_match 75. FixMatch's strong augmentation is CTAugment after
 * the weak one. Runs resume or are skipped when already done (the run directory is the cache).
 *
 * The table reports the test accuracy of the last evaluation and the median of the last three.
 * The exit code is 1 when a semi-supervised algorithm does not beat the supervised baseline.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ALGORITHMS, getAlgorithm } from '../src/algorithms/registry';
import type { Algorithm, HParamValue } from '../src/algorithms/types';
import { DEMO_DATASET, demoSchedule, prepareDemoData } from '../src/commands/demo';
import { runTrain } from '../src/commands/train';
import { dataRoot } from '../src/data/paths';
import { writeFileAtomic } from '../src/util/atomic-write';

export interface CompareOptions {
  trainKimg: number;
  algos: string[];
  dataDir?: string;
  trainDir: string;
  backend?: string;
  json?: string;
}

export interface Row {
  algo: string;
  semiSupervised: boolean;
  last: number;
  median3: number;
  seconds: number;
  runDir: string;
}

export function parseArgs(argv: string[]): CompareOptions {
  const o: CompareOptions = { trainKimg: 64, algos: ALGORITHMS.map((a) => a.name), trainDir: './experiments/compare' };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${argv[i - 1]} needs a value`);
      return v;
    };
    switch (argv[i]) {
      case '--train-kimg':
        o.trainKimg = Number(value());
        if (!Number.isInteger(o.trainKimg) || o.trainKimg < 1) throw new Error('--train-kimg must be a positive integer');
        break;
      case '--algos':
        o.algos = value().split(',').map((s) => s.trim()).filter(Boolean);
        o.algos.forEach((a) => getAlgorithm(a));
        break;
      case '--data-dir':
        o.dataDir = value();
        break;
      case '--train-dir':
        o.trainDir = value();
        break;
      case '--backend':
        o.backend = value();
        break;
      case '--json':
        o.json = value();
        break;
      default:
        throw new Error(`unknown option ${argv[i]}; see the comment at the top of scripts/compare-algorithms.ts`);
    }
  }
  // the baseline first: every other row is read against it
  o.algos = ['supervised', ...o.algos.filter((a) => a !== 'supervised')];
  return o;
}

function isSemiSupervised(a: Algorithm): boolean {
  const defaults = Object.fromEntries(a.hparams.map((h) => [h.name, h.default]));
  return a.views(defaults) > 0 || (a.strong?.(defaults).views ?? 0) > 0;
}

/** The short-schedule adjustments described at the top, for the settings an algorithm has. */
export function settingsFor(a: Algorithm, trainKimg: number): Record<string, HParamValue> {
  const s: Record<string, HParamValue> = { ...demoSchedule(trainKimg) };
  const has = (n: string) => a.hparams.some((h) => h.name === n);
  if (has('warmup_kimg')) s.warmup_kimg = Math.max(1, Math.floor(trainKimg / 4));
  if (a.name === 'mixmatch' || a.name === 'realmix') Object.assign(s, { beta: 0.75, w_match: 75 });
  return s;
}

const median = (v: number[]) => {
  const s = v.slice().sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function compare(o: CompareOptions, log: (l: string) => void = (l) => console.log(l)): Promise<Row[]> {
  const root = dataRoot(o.dataDir);
  await prepareDemoData(root, log);
  const rows: Row[] = [];
  for (const name of o.algos) {
    const a = getAlgorithm(name);
    log(`\n=== ${name} (${o.trainKimg} kimg) ===`);
    const started = Date.now();
    const r = await runTrain(
      { algo: name, dataset: DEMO_DATASET, dataDir: root, trainDir: o.trainDir, backend: o.backend, skipCorrupt: false, settings: settingsFor(a, o.trainKimg) },
      log,
    );
    // a finished run re-run trains nothing and has no new reports: read its metrics file instead
    const reports = fs.existsSync(path.join(r.runDir, 'metrics.jsonl'))
      ? fs
          .readFileSync(path.join(r.runDir, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { test: number })
      : r.reports;
    const tests = reports.map((x) => x.test);
    rows.push({
      algo: name,
      semiSupervised: isSemiSupervised(a),
      last: tests[tests.length - 1] ?? NaN,
      median3: median(tests.slice(-3)),
      seconds: (Date.now() - started) / 1000,
      runDir: r.runDir,
    });
  }
  return rows;
}

export function formatTable(rows: Row[], trainKimg: number): string[] {
  const base = rows.find((r) => r.algo === 'supervised');
  const lines = [`Test accuracy on MNIST with 100 labels, ${trainKimg} kimg each (te_cnn, EMA weights):`, ''];
  lines.push(`  ${'algorithm'.padEnd(22)}${'last'.padStart(8)}${'median-3'.padStart(10)}${'vs supervised'.padStart(15)}${'time'.padStart(9)}`);
  for (const r of rows) {
    const delta = base && r.algo !== 'supervised' ? (r.median3 - base.median3).toFixed(2).padStart(15) : ''.padStart(15);
    lines.push(`  ${r.algo.padEnd(22)}${r.last.toFixed(2).padStart(8)}${r.median3.toFixed(2).padStart(10)}${delta}${`${Math.round(r.seconds)}s`.padStart(9)}`);
  }
  return lines;
}

/** The semi-supervised algorithms whose median of the last three evaluations does not beat the baseline's. */
export function laggards(rows: Row[]): string[] {
  const base = rows.find((r) => r.algo === 'supervised');
  if (!base) return [];
  return rows.filter((r) => r.semiSupervised && !(r.median3 > base.median3)).map((r) => r.algo);
}

async function main(argv: string[]): Promise<number> {
  const o = parseArgs(argv);
  const rows = await compare(o);
  console.log('');
  for (const l of formatTable(rows, o.trainKimg)) console.log(l);
  if (o.json) writeFileAtomic(o.json, JSON.stringify({ trainKimg: o.trainKimg, dataset: DEMO_DATASET, rows }, null, 2) + '\n');
  const behind = laggards(rows);
  if (behind.length > 0) {
    console.log(`\nNot better than supervised: ${behind.join(', ')}`);
    return 1;
  }
  console.log('\nEvery semi-supervised algorithm beats the supervised baseline.');
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exit(2);
    },
  );
}
