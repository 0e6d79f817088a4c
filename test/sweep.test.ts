import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeImageExample } from '../src/data/example';
import { encodePngSync } from '../src/data/png';
import { writeRecords } from '../src/data/tfrecord';
import { sweepOptionsFrom } from '../src/commands/sweep';
import { expandGrid, parseIntList } from '../src/sweep/grid';
import { Interrupt } from '../src/sweep/interrupt';
import { formatCommand, planSweep, shellQuote } from '../src/sweep/plan';
import { clearDatasetFacts, runDirOf, runProgress, SWEEP_MARKER, writeMarker } from '../src/sweep/runs';
import { runSweep, SweepOptions } from '../src/sweep/sweep';
import { resolveTrainArgs } from '../src/sweep/train-args';

/**
 * The sweep's planning and its local launcher, on a tiny dataset in the genuine file formats and
 * with a stand-in for `ssl` that only records how it was run (the real CLI is in
 * sweep-local.test.ts).
 */

let tmp: string;
let data: string;

/** `<root>/tiny-{train,test}.tfrecord` and splits `SSL/tiny.<seed>@4`: 8x8 grey images, 2 classes. */
function writeTinyDataset(root: string, seeds: number[]): void {
  const record = (i: number) => {
    const px = new Uint8Array(64).fill(i % 2 ? 200 : 30);
    return encodeImageExample(encodePngSync(px, 8, 8, 1), i % 2);
  };
  const recs = (n: number, from = 0) => Array.from({ length: n }, (_, i) => record(from + i));
  fs.mkdirSync(path.join(root, 'SSL'), { recursive: true });
  writeRecords(path.join(root, 'tiny-train.tfrecord'), recs(20));
  writeRecords(path.join(root, 'tiny-test.tfrecord'), recs(6));
  for (const s of seeds) {
    writeRecords(path.join(root, 'SSL', `tiny.${s}@4-label.tfrecord`), recs(4));
    writeRecords(path.join(root, 'SSL', `tiny.${s}@4-unlabel.tfrecord`), recs(16, 4));
  }
}

/** A stand-in for `node ssl.js`: logs its command and GPU, sleeps, fails or stops on SIGINT as told. */
const FAKE_SSL = `
const fs = require('fs');
const args = process.argv.slice(2);
const ds = args.includes('--dataset') ? args[args.indexOf('--dataset') + 1] : null;
const line = (ev) => fs.appendFileSync(process.env.FAKE_LOG, JSON.stringify({ cmd: args[0], ds, gpu: process.env.CUDA_VISIBLE_DEVICES ?? null, ev, t: Date.now() }) + '\\n');
line('start');
if (process.env.FAKE_FAIL && ds === process.env.FAKE_FAIL) { console.log('some output'); console.error('ssl: fake failure of ' + ds); process.exit(3); }
let stop = false;
process.on('SIGINT', () => { stop = true; });
const t0 = Date.now();
const tick = () => {
  if (stop) { line('sigint'); console.error('ssl: interrupted; re-run to resume'); process.exit(1); }
  if (Date.now() - t0 >= Number(process.env.FAKE_MS || 200)) { line('end'); process.exit(0); }
  setTimeout(tick, 10);
};
tick();
`;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-sweep-'));
  data = path.join(tmp, 'data');
  writeTinyDataset(data, [1, 2, 3]);
  fs.writeFileSync(path.join(tmp, 'fake-ssl.js'), FAKE_SSL);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('the grid', () => {
  test('lists and ranges', () => {
    expect(parseIntList('1-5', '--seeds')).toEqual([1, 2, 3, 4, 5]);
    expect(parseIntList('250,4000', '--sizes')).toEqual([250, 4000]);
    expect(parseIntList('1-3,7,2', '--seeds')).toEqual([1, 2, 3, 7]);
    expect(() => parseIntList('', '--seeds')).toThrow(/^the grid expands to nothing: --seeds '' holds no values/);
    expect(() => parseIntList('5-1', '--seeds')).toThrow(/^the grid expands to nothing: --seeds range 5-1 runs backwards; write 1-5$/);
    expect(() => parseIntList('1,x', '--seeds')).toThrow(/'x' is not a non-negative integer/);
  });

  test('expands seeds x sizes x valid in the order of the shell loops', () => {
    const g = expandGrid(['train', '--dataset', 'cifar10.{seed}@{size}-{valid}'], { seed: [1, 2], size: [250, 4000], valid: [5000] });
    expect(g.map((p) => p.argv[2])).toEqual(['cifar10.1@250-5000', 'cifar10.1@4000-5000', 'cifar10.2@250-5000', 'cifar10.2@4000-5000']);
    expect(g.map((p) => p.index)).toEqual([0, 1, 2, 3]);
  });

  test('placeholders no option fills, options no placeholder uses, nothing to run', () => {
    expect(() => expandGrid(['train', '--dataset', 'c.{seed}@{labels}-1'], { seed: [1] })).toThrow(/^the command has \{labels\}, which no option fills; ssl sweep fills \{seed\} \(--seeds\), \{size\} \(--sizes\), \{valid\} \(--valid\)$/);
    expect(() => expandGrid(['train', '--dataset', 'c.{seed}@250-{valid}'], { seed: [1] })).toThrow(/^the command has \{valid\} but no --valid was given to fill it$/);
    expect(() => expandGrid(['train', '--dataset', 'c.{seed}@250-1'], { seed: [1], size: [250] })).toThrow(/^--sizes is given but the command has no \{size\}/);
    expect(() => expandGrid([], { seed: [1] })).toThrow(/^nothing to sweep/);
  });
});

describe('planning', () => {
  const exp = () => path.join(tmp, 'exp-plan');
  const tpl = (dataset: string, extra: string[] = []) => ['train', '--algo', 'supervised', '--dataset', dataset, '--data-dir', data, '--train-dir', exp(), '--arch', 'te_cnn', ...extra];

  test('each missing split is made once, whatever the number of runs that share it', () => {
    const p = planSweep(tpl('tiny.{seed}@{size}-{valid}'), { seed: [1, 5, 6], size: [4], valid: [2, 3] });
    expect(p.tasks).toHaveLength(6);
    expect(p.prep.map((s) => formatCommand(s.argv))).toEqual([
      `ssl create-split --dataset tiny --seed 5 --size 4 --data-dir ${data}`,
      `ssl create-split --dataset tiny --seed 6 --size 4 --data-dir ${data}`,
    ]);
    expect(p.stateDir).toBe(path.join(exp(), 'sweeps', p.id));
    // the same template and grid is the same sweep; another grid is another
    expect(planSweep(tpl('tiny.{seed}@{size}-{valid}'), { seed: [1, 5, 6], size: [4], valid: [2, 3] }).id).toBe(p.id);
    expect(planSweep(tpl('tiny.{seed}@{size}-{valid}'), { seed: [1, 5], size: [4], valid: [2, 3] }).id).not.toBe(p.id);
  });

  test('an aug-copy dataset: the split, then aug-copy from it', () => {
    const p = planSweep(tpl('tiny_aug3.{seed}@4-2'), { seed: [1, 7] }, { copyAugment: 'cutout' });
    expect(p.prep.map((s) => [formatCommand(s.argv), s.after ?? null])).toEqual([
      [`ssl aug-copy --dataset tiny.1@4 --copies 3 --augment cutout --data-dir ${data}`, null],
      [`ssl create-split --dataset tiny --seed 7 --size 4 --data-dir ${data}`, null],
      [`ssl aug-copy --dataset tiny.7@4 --copies 3 --augment cutout --data-dir ${data}`, 'tiny.7@4'],
    ]);
  });

  test('bad input is refused before anything starts', () => {
    expect(() => planSweep(tpl('nope.{seed}@4-2'), { seed: [1] })).toThrow(/^split nope\.1@4 is missing and so is its input .*nope-train\.tfrecord; build it first with: ssl create-datasets nope$/);
    expect(() => planSweep(tpl('tiny.{seed}@4-2', ['--lr', 'fast']), { seed: [1] })).toThrow(/^the swept command `ssl train .*`: option '--lr <n>' argument 'fast' is invalid/);
    expect(() => planSweep(tpl('tiny.{seed}@4x2'), { seed: [1] })).toThrow(/^bad dataset name "tiny\.1@4x2"/);
    expect(() => planSweep(['create-split', '--seed', '{seed}'], { seed: [1] })).toThrow(/^ssl sweep runs `ssl train` commands/);
    expect(() => planSweep(tpl('tiny.{seed}@4-2'), { seed: [3, 3] })).toThrow(/^runs seed=3 and seed=3 are the same run/);
    // ssl's global --verbose is a valid part of a train command
    expect(planSweep(tpl('tiny.{seed}@4-2', ['--verbose']), { seed: [1] }).tasks).toHaveLength(1);
  });

  test('shell quoting for --dry-run output', () => {
    expect(shellQuote('cifar10.1@250-5000')).toBe('cifar10.1@250-5000');
    expect(shellQuote("it's here")).toBe(`'it'\\''s here'`);
    expect(shellQuote('')).toBe("''");
    expect(formatCommand(['train', '--train-dir', 'my runs'])).toBe("ssl train --train-dir 'my runs'");
  });

  test('the run directory is the one ssl train names, from the dataset\'s classes and image size', async () => {
    const t = resolveTrainArgs(tpl('tiny.1@4-2'));
    expect(await runDirOf(t)).toBe(path.join(exp(), 'tiny.1@4-2', 'FSBaseline_archte_cnn_batch64_ema0.999_lr0.002_nclass2_smoothing0.001_wd0.02'));
    expect(await runDirOf(resolveTrainArgs(tpl('tiny.9@4-2')))).toBeNull();
  });
});

describe('runSweep with the local launcher', () => {
  const base = (exp: string, over: Partial<SweepOptions> = {}): SweepOptions => ({
    template: ['train', '--algo', 'supervised', '--dataset', 'tiny.{seed}@4-2', '--data-dir', data, '--train-dir', exp, '--arch', 'te_cnn', '--train-kimg', '1'],
    axes: { seed: [1, 2, 3] },
    launcher: 'local',
    dryRun: false,
    slurm: { sbatchLines: [], maxRetries: 0, pollSeconds: 1 },
    ssl: [process.execPath, path.join(tmp, 'fake-ssl.js')],
    log: () => undefined,
    interrupt: new Interrupt(),
    ...over,
  });
  const events = (file: string) =>
    fs.existsSync(file)
      ? fs
          .readFileSync(file, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as { cmd: string; ds: string; gpu: string | null; ev: string; t: number })
      : [];

  test('--dry-run prints the commands and runs nothing', async () => {
    const lines: string[] = [];
    const r = await runSweep(base(path.join(tmp, 'exp-dry'), { dryRun: true, log: (l) => lines.push(l), axes: { seed: [1, 4] } }));
    expect(lines).toEqual([
      `ssl create-split --dataset tiny --seed 4 --size 4 --data-dir ${data}`,
      `ssl train --algo supervised --dataset tiny.1@4-2 --data-dir ${data} --train-dir ${path.join(tmp, 'exp-dry')} --arch te_cnn --train-kimg 1`,
      `ssl train --algo supervised --dataset tiny.4@4-2 --data-dir ${data} --train-dir ${path.join(tmp, 'exp-dry')} --arch te_cnn --train-kimg 1`,
    ]);
    expect(r.commands).toEqual(lines);
    expect(fs.existsSync(path.join(tmp, 'exp-dry'))).toBe(false);
  });

  test('runs --jobs at a time, each on its own GPU, and writes the sweep marker into each run', async () => {
    const log = path.join(tmp, 'fake-gpus.jsonl');
    const exp = path.join(tmp, 'exp-gpus');
    const r = await runSweep(base(exp, { gpus: ['3', '5'], env: { ...process.env, FAKE_LOG: log, FAKE_MS: '400' } }));
    expect(r.outcomes.map((o) => o.status)).toEqual(['done', 'done', 'done']);
    const ev = events(log);
    expect(ev.filter((e) => e.ev === 'start')).toHaveLength(3);
    // at most two at once, and two running at once never share a device
    const points = ev.map((e) => ({ t: e.t, d: e.ev === 'start' ? 1 : -1, gpu: e.gpu, ds: e.ds })).sort((a, b) => a.t - b.t || a.d - b.d);
    let running: string[] = [];
    let most = 0;
    for (const p of points) {
      running = p.d > 0 ? [...running, p.gpu as string] : running.filter((g, i) => i !== running.indexOf(p.gpu as string));
      expect(new Set(running).size).toBe(running.length);
      most = Math.max(most, running.length);
    }
    expect(most).toBe(2);
    expect(new Set(ev.map((e) => e.gpu))).toEqual(new Set(['3', '5']));
    for (const t of r.plan.tasks) {
      const dir = (await runDirOf(t.train)) as string;
      const marker = JSON.parse(fs.readFileSync(path.join(dir, SWEEP_MARKER), 'utf8'));
      expect(marker.sweep).toBe(r.plan.id);
      expect(marker.command).toBe(formatCommand(t.train.argv));
    }
    expect(fs.readdirSync(path.join(r.plan.stateDir, 'logs')).sort()).toEqual(['000-seed1.log', '001-seed2.log', '002-seed3.log']);
  });

  test('finished runs are skipped; a failed run ends the sweep with its error line and log', async () => {
    const exp = path.join(tmp, 'exp-fail');
    const log = path.join(tmp, 'fake-fail.jsonl');
    // seed 1 has already reached train_kimg
    const t1 = resolveTrainArgs(base(exp).template.map((a) => a.replace('{seed}', '1')));
    const dir1 = (await runDirOf(t1)) as string;
    fs.mkdirSync(path.join(dir1, 'tf'), { recursive: true });
    fs.writeFileSync(path.join(dir1, 'tf', 'model.ckpt-00001024.sslckpt'), 'x');
    expect(runProgress(dir1, 1)).toEqual({ kind: 'finished', imagesSeen: 1024 });
    const lines: string[] = [];
    const p = runSweep(base(exp, { jobs: 2, log: (l) => lines.push(l), env: { ...process.env, FAKE_LOG: log, FAKE_FAIL: 'tiny.2@4-2' } }));
    await expect(p).rejects.toThrow(/^1 of 3 runs failed; first: seed=2 \(ssl: fake failure of tiny\.2@4-2; log .*001-seed2\.log\); fix it and re-run the same ssl sweep command to resume$/);
    expect(events(log).filter((e) => e.ev === 'start').map((e) => e.ds).sort()).toEqual(['tiny.2@4-2', 'tiny.3@4-2']);
    expect(lines.join('\n')).toMatch(/1 finished, 0 to resume, 2 to start/);
  });

  test('Ctrl-C stops the runs (they get SIGINT), starts no more, and says how to resume', async () => {
    const exp = path.join(tmp, 'exp-int');
    const log = path.join(tmp, 'fake-int.jsonl');
    const interrupt = new Interrupt();
    const p = runSweep(base(exp, { interrupt, env: { ...process.env, FAKE_LOG: log, FAKE_MS: '20000' }, axes: { seed: [1, 2, 3] }, jobs: 2 }));
    const t0 = Date.now();
    while (events(log).filter((e) => e.ev === 'start').length < 2 && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 50));
    interrupt.trigger();
    await expect(p).rejects.toThrow(/^interrupted: 2 runs stopped at a checkpoint; re-run the same ssl sweep command to resume$/);
    const ev = events(log);
    expect(ev.filter((e) => e.ev === 'sigint')).toHaveLength(2);
    expect(ev.filter((e) => e.ev === 'start')).toHaveLength(2);
    expect(Date.now() - t0).toBeLessThan(15_000);
    // the lock is released: the same sweep can run again at once
    expect(fs.existsSync(path.join(exp, 'sweeps'))).toBe(true);
    const again = await runSweep(base(exp, { env: { ...process.env, FAKE_LOG: log, FAKE_MS: '10' } }));
    expect(again.outcomes.map((o) => o.status)).toEqual(['done', 'done', 'done']);
  });

  test('a run directory of another sweep is refused before anything starts', async () => {
    const exp = path.join(tmp, 'exp-owned');
    const opts = base(exp);
    const t = resolveTrainArgs(opts.template.map((a) => a.replace('{seed}', '2')));
    const dir = (await runDirOf(t)) as string;
    writeMarker(dir, { sweep: 'someother', command: 'ssl train ... --train-kimg 64', identity: { ...t.identity, settings: { ...t.identity.settings, train_kimg: 64 } } });
    await expect(runSweep(opts)).rejects.toThrow(/^\S+ belongs to a different sweep \(someother: `ssl train \.\.\. --train-kimg 64`; train_kimg 1 vs 64 here vs there\); use another --train-dir, or delete .*sweep\.json to continue that run with these settings$/);
    expect(fs.existsSync(path.join(exp, 'sweeps'))).toBe(false);
    // the same settings are the same run, whichever sweep wrote the marker
    writeMarker(dir, { sweep: 'someother', command: 'ssl train ...', identity: t.identity });
    const log = path.join(tmp, 'fake-owned.jsonl');
    await expect(runSweep({ ...opts, env: { ...process.env, FAKE_LOG: log, FAKE_MS: '10' } })).resolves.toBeDefined();
  });

  test('two runs that ssl train would put in one directory are refused before anything starts', async () => {
    const exp = path.join(tmp, 'exp-same');
    const opts = base(exp, { template: [...base(exp).template.map((a) => a.replace('{seed}', '1')), '--report-kimg', '{seed}'], axes: { seed: [1, 2] } });
    await expect(runSweep(opts)).rejects.toThrow(/^runs seed=1 and seed=2 would train in the same directory \S+FSBaseline_\S+; the run name does not show what tells them apart: put the placeholders in the dataset or in a setting the run name holds$/);
    expect(fs.existsSync(exp)).toBe(false);
  });

  test('launcher options that do not fit are refused', async () => {
    const o = { launcher: 'local', sbatch: [], maxRetries: 3, poll: 15 };
    expect(() => sweepOptionsFrom(['train'], { ...o, partition: 'gpu' })).toThrow(/^--partition is a Slurm option; add --launcher slurm/);
    expect(() => sweepOptionsFrom(['train'], { ...o, launcher: 'slurm', gpus: '0,1' })).toThrow(/^--gpus is for --launcher local/);
    expect(() => sweepOptionsFrom(['train'], { ...o, gpus: ',' })).toThrow(/^--gpus ',' names no device/);
    await expect(runSweep(base(path.join(tmp, 'exp-x'), { gpus: ['0'], jobs: 2 }))).rejects.toThrow(/^--jobs 2 needs 2 devices but --gpus names 1/);
    await expect(runSweep(base(path.join(tmp, 'exp-x'), { launcher: 'slurm', env: { PATH: tmp } }))).rejects.toThrow(/^--launcher slurm needs sbatch, which is not on PATH; run ssl sweep on a Slurm login node, or use --launcher local$/);
    expect(fs.existsSync(path.join(tmp, 'exp-x'))).toBe(false);
  });
});

afterEach(() => clearDatasetFacts());
