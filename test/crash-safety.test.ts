import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type * as tf from '@tensorflow/tfjs';
import { supervised } from '../src/algorithms/supervised';
import type { Algorithm } from '../src/algorithms/types';
import { selectBackend } from '../src/backend/select';
import { listCheckpoints, loadCheckpoint } from '../src/train/checkpoint';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import { train } from '../src/train/trainer';
import { trainingBackends } from './helpers/backends';
import { syntheticData } from './helpers/synthetic';

/**
 * Issue 7's faults through the real CLI: `kill -9` at several points of a run, then the same
 * command again, must end on exactly the weights of a run that never stopped; a second process on
 * the same run directory is refused while the first holds it; --nan-policy.
 */

const CLI = path.join(__dirname, '..', 'dist', 'bin', 'ssl.js');
const TRAIN = ['train', '--algo', 'supervised', '--dataset', 'mnist.1@100-1000', '--arch', 'te_cnn', '--train-kimg', '3', '--report-kimg', '1', '--save-kimg', '1', '--batch', '32'];

let root: string;
let env: NodeJS.ProcessEnv;

function ssl(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 600_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function runDirOf(trainDir: string): string {
  const ds = path.join(trainDir, 'mnist.1@100-1000');
  const [name] = fs.readdirSync(ds);
  return path.join(ds, name);
}

function finalState(trainDir: string): Map<string, Float32Array> {
  const ckpts = listCheckpoints(path.join(runDirOf(trainDir), 'tf'));
  const ck = loadCheckpoint(ckpts[ckpts.length - 1].path);
  expect(ck.header.imagesSeen).toBe(3 * 1024);
  const out = new Map<string, Float32Array>();
  for (const [k, v] of ck.tensors) out.set(k, v.values);
  return out;
}

/** Starts a training run and SIGKILLs it once `when` says so (polled every 20 ms). */
function killWhen(trainDir: string, when: (ckpts: number, ms: number) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [CLI, ...TRAIN, '--train-dir', trainDir], { env, stdio: 'ignore' });
    const t0 = Date.now();
    const timer = setInterval(() => {
      let n = 0;
      try {
        n = listCheckpoints(path.join(runDirOf(trainDir), 'tf')).length;
      } catch {
        /* run directory not there yet */
      }
      if (when(n, Date.now() - t0)) child.kill('SIGKILL');
    }, 20);
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      if (signal === 'SIGKILL') resolve();
      else reject(new Error(`the run ended by itself (code ${code}) before the kill point`));
    });
  });
}

beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-crash-'));
  env = { ...process.env, ML_DATA: path.join(root, 'data') };
  expect(ssl(['create-datasets', 'mnist']).status).toBe(0);
  expect(ssl(['create-split', '--seed', '1', '--size', '100', '--dataset', 'mnist']).status).toBe(0);
}, 300_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('kill -9, then the same command again', () => {
  let reference: Map<string, Float32Array>;

  beforeAll(() => {
    const dir = path.join(root, 'reference');
    const r = ssl([...TRAIN, '--train-dir', dir]);
    expect(r.status).toBe(0);
    reference = finalState(dir);
  }, 300_000);

  // before the first checkpoint (resumes from nothing), right after checkpoints 1 and 2 appear, and
  // mid-way between checkpoints 1 and 2
  const points: Array<[string, (ckpts: number, ms: number) => boolean]> = [
    ['before any checkpoint', (n, ms) => n === 0 && ms > 1500],
    ['as checkpoint 1 appears', (n) => n >= 1],
    ['between checkpoints 1 and 2', (() => {
      let seen = 0;
      return (n: number, ms: number) => {
        if (n >= 1 && seen === 0) seen = ms;
        return seen > 0 && ms - seen > 300;
      };
    })()],
    ['as checkpoint 2 appears', (n) => n >= 2],
  ];

  test.each(points)('killed %s: the resumed run ends on the same weights', async (name, when) => {
    const dir = path.join(root, name.replace(/\W+/g, '-'));
    await killWhen(dir, when);
    const r = ssl([...TRAIN, '--train-dir', dir]);
    expect(r.status).toBe(0);
    const got = finalState(dir);
    expect([...got.keys()].sort()).toEqual([...reference.keys()].sort());
    for (const [k, v] of reference) expect([k, Buffer.from(got.get(k)!.buffer).equals(Buffer.from(v.buffer))]).toEqual([k, true]);
    // no temp file left behind by the killed writer
    expect(fs.readdirSync(path.join(runDirOf(dir), 'tf')).filter((f) => f.includes('.tmp'))).toEqual([]);
  }, 300_000);
});

test('a second process on the same run directory is refused while the first runs', async () => {
  const dir = path.join(root, 'locked');
  const first = spawn(process.execPath, [CLI, ...TRAIN, '--train-kimg', '50', '--train-dir', dir], { env, stdio: 'ignore' });
  try {
    // wait for the first to hold the run directory
    const t0 = Date.now();
    while (!(fs.existsSync(path.join(dir, 'mnist.1@100-1000')) && fs.readdirSync(path.join(dir, 'mnist.1@100-1000')).length > 0 && fs.existsSync(path.join(runDirOf(dir), '.lock')))) {
      if (Date.now() - t0 > 120_000) throw new Error('the first run never took its lock');
      await new Promise((r) => setTimeout(r, 50));
    }
    const second = ssl([...TRAIN, '--train-kimg', '50', '--train-dir', dir]);
    expect(second.status).toBe(1);
    const errors = second.out.trim().split('\n').filter((l) => l.startsWith('ssl:'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/is in use by pid \d+ on host .*; wait for it or remove .*\.lock if that process is gone$/);
    expect(second.out).not.toMatch(/\n\s+at /);
  } finally {
    first.kill('SIGKILL');
    await new Promise((r) => first.on('exit', r));
  }
  // the owner died: the next run takes the directory over and finishes
  const again = ssl([...TRAIN, '--train-dir', dir]);
  expect(again.status).toBe(0);
}, 300_000);

describe('--nan-policy', () => {
  const backend = trainingBackends()[0];
  // a supervised step whose loss is NaN on steps 3 and 4 only
  const flaky = (bad: (imagesSeen: number) => boolean): Algorithm => ({
    ...supervised,
    loss(ctx, inputs, targets) {
      const r = supervised.loss(ctx, inputs, targets);
      if (!bad(ctx.imagesSeen)) return r;
      return { ...r, loss: r.loss.mul(Number.NaN) as tf.Scalar };
    },
  });
  const settings = { arch: 'resnet', filters: 4, scales: 1, repeat: 1, batch: 16, train_kimg: 1, report_kimg: 1, save_kimg: 1, eval_batch: 16 };
  let dir: string;
  beforeAll(async () => {
    await selectBackend(backend);
  });
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-nan-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  test(`stop (default): one line naming the step, no checkpoint written (${backend})`, async () => {
    const algo = flaky((n) => n === 3 * 16);
    const cfg = toTrainConfig(algo, resolveSettings(algo, {}, settings), { trainDir: dir, seed: 1 });
    await expect(train(cfg, syntheticData())).rejects.toThrow(/^loss became NaN at 48 images \(kimg 0\); the last good checkpoint is kept in .*--nan-policy skip$/);
    const ds = path.join(dir, fs.readdirSync(dir)[0]);
    expect(listCheckpoints(path.join(ds, fs.readdirSync(ds)[0], 'tf'))).toEqual([]);
  }, 120_000);

  test(`skip: the bad steps change nothing, the run goes on and finishes (${backend})`, async () => {
    const algo = flaky((n) => n === 3 * 16 || n === 4 * 16);
    const cfg = toTrainConfig(algo, resolveSettings(algo, {}, { ...settings, nan_policy: 'skip' }), { trainDir: dir, seed: 1 });
    const lines: string[] = [];
    const losses: number[] = [];
    const r = await train(cfg, syntheticData(), { log: (l) => lines.push(l), onStep: (_, loss) => losses.push(loss) });
    expect(r.imagesSeen).toBe(1024);
    expect(lines.filter((l) => l.startsWith('Skipped the step'))).toHaveLength(2);
    expect(losses.filter((l) => Number.isNaN(l))).toHaveLength(2);
    const ck = loadCheckpoint(listCheckpoints(path.join(r.runDir, 'tf'))[0].path);
    for (const [k, v] of ck.tensors) expect([k, v.values.every((x) => Number.isFinite(x))]).toEqual([k, true]);
  }, 120_000);
});
