import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { listCheckpoints } from '../src/train/checkpoint';
import { arraySpec, parseSqueue } from '../src/sweep/slurm';

/**
 * `ssl sweep --launcher slurm` against a real single-node Slurm (Debian's slurm-wlm and munge),
 * which scripts/setup-slurm.sh installs and starts when this machine lacks it (CI: a fresh Debian
 * where the tests run as root). A tiny grid of real `ssl train` runs goes through sbatch; one
 * task is made to fail once through the job script's test hook (SSL_SWEEP_FAIL_ONCE) and is
 * resubmitted.
 */
const REPO = path.join(__dirname, '..');
const CLI = path.join(REPO, 'dist', 'bin', 'ssl.js');

let root: string;
let env: NodeJS.ProcessEnv;

function ssl(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: root, encoding: 'utf8', env: { ...env, ...extraEnv }, timeout: 240_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(() => {
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -p .\` (npm test does)`);
  const setup = spawnSync('bash', [path.join(REPO, 'scripts', 'setup-slurm.sh')], { encoding: 'utf8', timeout: 240_000 });
  if (setup.status !== 0) throw new Error(`scripts/setup-slurm.sh failed (exit ${setup.status}):\n${setup.stderr}\n${setup.stdout}`);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-slurm-'));
  env = { ...process.env, ML_DATA: path.join(root, 'data') };
  const r = ssl(['create-datasets', 'mnist']);
  if (r.code !== 0) throw new Error(r.err);
}, 300_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

test('squeue lines and --array lists', () => {
  const q = parseSqueue('12_0|RUNNING\n12_[2-4%2]|PENDING\n13|COMPLETED\n\n');
  expect([...q.entries()]).toEqual([
    ['12_0', 'RUNNING'],
    ['12_2', 'PENDING'],
    ['12_3', 'PENDING'],
    ['12_4', 'PENDING'],
    ['13', 'COMPLETED'],
  ]);
  expect(arraySpec([5, 0, 1, 2, 7, 8, 3])).toBe('0-3,5,7-8');
});

test('a grid runs as a Slurm job array; a task that fails is resubmitted; a re-run submits nothing', () => {
  const args = [
    'sweep', '--launcher', 'slurm', '--seeds', '1-2', '--sizes', '50', '--valid', '100', '--poll', '1', '--max-retries', '2', '--partition', 'debug', '--time', '10:00',
    '--', 'train', '--algo', 'supervised', '--dataset', 'mnist.{seed}@{size}-{valid}', '--arch', 'te_cnn', '--train-kimg', '1', '--report-kimg', '1', '--save-kimg', '1', '--train-dir', 'exp',
  ];
  const r = ssl(args, { SSL_SWEEP_FAIL_ONCE: '1' });
  const all = `${r.out}\n${r.err}`;
  expect([r.code, all]).toEqual([0, expect.any(String)]);
  expect(r.out).toMatch(/^Submitted job \d+: making 2 splits \(mnist\.1@50, mnist\.2@50\)/m);
  expect(r.out).toMatch(/^Submitted job \d+: the sweep as array 0-1 \(2 runs\) to partition debug$/m);
  expect(r.out).toMatch(/^Task 1 \(seed=2 size=50 valid=100\) failed \(exit 1: SSL_SWEEP_FAIL_ONCE: task 1 fails once \(test hook\)\); resubmitting, retry 1 of 2$/m);
  expect(r.out).toMatch(/^Submitted job \d+: retrying array 1 \(1 run\) to partition debug$/m);
  expect(r.out).toMatch(/^Done seed=1 size=50 valid=100: last20 \d+\.\d\d%$/m);
  expect(r.out).toMatch(/^Done seed=2 size=50 valid=100: last20 \d+\.\d\d%$/m);
  expect(r.out).toMatch(/2 of 2 finished \(0 already were\), 0 failed, 0 stopped/);
  for (const d of ['mnist.1@50-100', 'mnist.2@50-100']) {
    const [run] = fs.readdirSync(path.join(root, 'exp', d));
    expect(listCheckpoints(path.join(root, 'exp', d, run, 'tf')).pop()?.imagesSeen).toBe(1024);
  }
  const [id] = fs.readdirSync(path.join(root, 'exp', 'sweeps'));
  const script = fs.readFileSync(path.join(root, 'exp', 'sweeps', id, 'slurm', 'array.sh'), 'utf8');
  expect(script).toMatch(/^#SBATCH --partition=debug$/m);
  expect(script).toMatch(/^#SBATCH --time=10:00$/m);
  expect(script).toMatch(/^#SBATCH --no-requeue$/m);

  const again = ssl(args);
  expect(again.code).toBe(0);
  expect(again.out).toMatch(/2 finished, 0 to resume, 0 to start/);
  expect(again.out).not.toMatch(/Submitted job/);
}, 300_000);
