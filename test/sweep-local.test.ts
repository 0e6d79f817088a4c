import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { listCheckpoints } from '../src/train/checkpoint';

/**
 * `ssl sweep --launcher local` end to end through the real CLI (dist/, built by `tsc -p .`): a
 * tiny grid of real `ssl train` runs on the embedded MNIST digits, a re-run that skips them, the
 * report over them, and Ctrl-C that leaves every run resumable.
 */
const CLI = path.join(__dirname, '..', 'dist', 'bin', 'ssl.js');

let root: string;
let env: NodeJS.ProcessEnv;

function ssl(args: string[], cwd = root) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env, timeout: 300_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const TRAIN = ['train', '--algo', 'supervised', '--dataset', 'mnist.{seed}@{size}-{valid}', '--arch', 'te_cnn', '--report-kimg', '1', '--save-kimg', '1'];

function runDirs(exp: string): string[] {
  return ['mnist.1@50-100', 'mnist.2@50-100'].map((d) => {
    const parent = path.join(exp, d);
    const names = fs.existsSync(parent) ? fs.readdirSync(parent) : [];
    return path.join(parent, names[0] ?? 'missing');
  });
}

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p .\` (npm test does)`);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-sweep-local-'));
  env = { ...process.env, ML_DATA: path.join(root, 'data') };
  const r = ssl(['create-datasets', 'mnist']);
  if (r.code !== 0) throw new Error(r.err);
}, 120_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test('a grid of real runs: splits made once, runs in parallel, skipped when re-run, reported', () => {
  const args = ['sweep', '--seeds', '1-2', '--sizes', '50', '--valid', '100', '--jobs', '2', '--', ...TRAIN, '--train-kimg', '1', '--train-dir', 'exp'];
  let r = ssl(args);
  expect([r.code, r.err]).toEqual([0, expect.any(String)]);
  expect(r.out).toMatch(/0 finished, 0 to resume, 2 to start; 2 splits to make first/);
  expect(r.out).toMatch(/^Done seed=1 size=50 valid=100: last20 \d+\.\d\d%$/m);
  expect(r.out).toMatch(/^Done seed=2 size=50 valid=100: last20 \d+\.\d\d%$/m);
  expect(r.out).toMatch(/2 of 2 finished \(0 already were\), 0 failed, 0 stopped/);
  for (const s of [1, 2]) expect(fs.existsSync(path.join(root, 'data', 'SSL', `mnist.${s}@50-label.tfrecord`))).toBe(true);
  // the directory the sweep predicted (its marker) is the one ssl train wrote
  for (const dir of runDirs(path.join(root, 'exp'))) {
    expect(fs.existsSync(path.join(dir, 'args', 'args.json'))).toBe(true);
    expect(fs.existsSync(path.join(dir, 'sweep.json'))).toBe(true);
    expect(listCheckpoints(path.join(dir, 'tf')).pop()?.imagesSeen).toBe(1024);
  }

  r = ssl(args);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/2 finished, 0 to resume, 0 to start/);

  // the same runs with other settings would mix two experiments in one directory
  const other = ssl([...args.slice(0, -4), '--train-kimg', '3', '--train-dir', 'exp']);
  expect(other.code).toBe(1);
  expect(other.err.trim().split('\n')).toEqual([expect.stringMatching(/^ssl: \S+ belongs to a different sweep \(.*train_kimg 3 vs 1 here vs there\)/)]);

  const rep = ssl(['report', 'exp']);
  expect(rep.code).toBe(0);
  expect(rep.out).toMatch(/^mnist +50 +100 +supervised +\S+ ± \S+ +2 +finished$/m);
}, 300_000);

test('Ctrl-C stops every run at a checkpoint; the same sweep resumes them', async () => {
  const args = ['sweep', '--seeds', '1-2', '--sizes', '50', '--valid', '100', '--jobs', '2', '--', ...TRAIN, '--train-kimg', '4', '--train-dir', 'exp-int'];
  const child = spawn(process.execPath, [CLI, ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const exp = path.join(root, 'exp-int');
  const t0 = Date.now();
  // both runs have written a checkpoint: they are under way
  while (!runDirs(exp).every((d) => listCheckpoints(path.join(d, 'tf')).length > 0)) {
    if (Date.now() - t0 > 120_000) throw new Error(`no checkpoints after 120 s:\n${out}\n${err}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGINT');
  expect(await exited).toBe(1);
  expect(err).toMatch(/^ssl: interrupted: 2 runs stopped at a checkpoint; re-run the same ssl sweep command to resume$/m);
  const stoppedAt = runDirs(exp).map((d) => listCheckpoints(path.join(d, 'tf')).pop()?.imagesSeen ?? 0);
  for (const s of stoppedAt) {
    expect(s).toBeGreaterThan(0);
    expect(s).toBeLessThan(4 * 1024);
  }
  const r = ssl(args);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/0 finished, 2 to resume, 0 to start/);
  for (const d of runDirs(exp)) expect(listCheckpoints(path.join(d, 'tf')).pop()?.imagesSeen).toBe(4 * 1024);
  const logs = path.join(exp, 'sweeps');
  const [id] = fs.readdirSync(logs);
  for (const f of ['000-seed1-size50-valid100.log', '001-seed2-size50-valid100.log']) {
    expect(fs.readFileSync(path.join(logs, id, 'logs', f), 'utf8')).toMatch(/Resuming from .*model\.ckpt-/);
  }
}, 300_000);
