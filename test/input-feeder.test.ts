import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { getAugmentation } from '../src/data/augment';
import { RandomState } from '../src/random';
import { feederSeed, feederStateFromCheckpoint, InputFeeder } from '../src/train/feeder';
import { runFeeder, type FeederRunResult } from './helpers/feeder-run';
import { syntheticData } from './helpers/synthetic';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('InputFeeder in-thread (as under ts-jest, or with --augment-workers 0)', () => {
  test('the batches do not depend on the prefetch depth', async () => {
    const runs = await Promise.all([0, 1, 2].map((prefetch) => runFeeder({ steps: 6, prefetch })));
    expect(runs[1].digests).toEqual(runs[0].digests);
    expect(runs[2].digests).toEqual(runs[0].digests);
    expect(new Set(runs[0].digests).size).toBe(6);
  });

  test('a restored state with batches in flight redraws them, with the CTAugment weights they were requested with', async () => {
    const whole = await runFeeder({ steps: 7, prefetch: 2, adapt: true, saveAt: 3 });
    const saved = whole.saved!;
    // two batches were in flight, requested before the last probe updates
    expect(saved.feeder.pendingAugmentation).toHaveLength(2);
    expect(saved.feeder.pendingAugmentation[1]).not.toEqual(saved.augmentation);
    const copy = JSON.parse(JSON.stringify(saved));
    const resumed = await runFeeder({ steps: 4, prefetch: 2, adapt: true, resume: copy });
    expect(resumed.digests).toEqual(whole.digests.slice(3));
    // the saved weights matter: requesting the pending batches with the live ones gives other batches
    const live = { ...copy, feeder: { ...copy.feeder, pendingAugmentation: [copy.augmentation, copy.augmentation] } };
    const wrong = await runFeeder({ steps: 2, prefetch: 2, adapt: true, resume: live });
    expect(wrong.digests).not.toEqual(whole.digests.slice(3, 5));
    // and a different depth after resuming redraws the pending batches the same way
    const shallow = await runFeeder({ steps: 2, prefetch: 0, adapt: true, resume: JSON.parse(JSON.stringify(saved)) });
    expect(shallow.digests).toEqual(whole.digests.slice(3, 5));
  });

  test('the tensor count does not grow over many steps', async () => {
    const r = await runFeeder({ steps: 40, prefetch: 1, adapt: true });
    expect(r.tensorsAfter).toBe(r.tensorsBefore);
  });

  test('checkpoints without a feeder generator continue their data order from a generator derived from the run one', async () => {
    const data = syntheticData();
    const make = () => new InputFeeder(data, getAugmentation('none'), new RandomState(feederSeed(3)), { views: 1, uratio: 1, workers: 0, prefetch: 1 });
    const run = new RandomState(3).getState();
    const labeled = { order: [5, 1, 7, 0, 2, 6, 3, 4], pos: 4 };
    const legacy = { rng: run, labeled, unlabeled: null };
    const a = feederStateFromCheckpoint(legacy);
    expect(a.pendingAugmentation).toEqual([]);
    expect(a.feederRng).toEqual(feederStateFromCheckpoint(legacy).feederRng);
    expect(a.feederRng).not.toEqual(run);
    const f = make();
    f.setState(a);
    const { inputs } = await f.next(4);
    expect(Array.from(inputs.labeledIndex!)).toEqual([2, 6, 3, 4]);
    tf.dispose([inputs.x, inputs.labels, ...inputs.u]);
    await f.close();
    // a state the feeder wrote itself is used as it is
    const own = { ...legacy, feederRng: new RandomState(9).getState(), pendingAugmentation: [] };
    expect(feederStateFromCheckpoint(own).feederRng).toEqual(own.feederRng);
  });

  test('a failing augmentation surfaces from next(), and a closed feeder says so', async () => {
    const data = syntheticData();
    const feeder = new InputFeeder(data, getAugmentation('cifar10'), new RandomState(1), {
      views: 1,
      uratio: 1,
      strong: { augmentation: getAugmentation('cifar10+ctaugment'), views: 1 },
      workers: 0,
    });
    const s = feeder.getState();
    expect(() => feeder.setState({ ...s, pendingAugmentation: [[]] })).toThrow(/1 augmentation state/);
    feeder.setState({ ...s, pendingAugmentation: [[{ version: 7 }]] });
    await expect(feeder.next(4)).rejects.toThrow(/CTAugment state is invalid/);
    await feeder.close();
    await expect(feeder.next(4)).rejects.toThrow(/closed/);
    expect(() => new InputFeeder(data, { ...getAugmentation('none'), name: 'mine' }, new RandomState(1), { views: 0, uratio: 1 })).toThrow(/unknown augmentation 'mine'/);
  });
});

describe('InputFeeder on worker threads (compiled dist/)', () => {
  const dist = (file: string) => path.join(__dirname, '..', 'dist', file);
  const helper = dist('test/helpers/feeder-run.js');

  test('gives the in-thread batches for any number of workers and any prefetch depth', async () => {
    if (!fs.existsSync(helper)) throw new Error(`${helper} is missing: run \`npx tsc -p .\` (npm test does)`);
    const script = `
      const tf = require('@tensorflow/tfjs');
      const { runFeeder } = require(${JSON.stringify(helper)});
      (async () => {
        await tf.setBackend('cpu');
        const out = {};
        for (const workers of [0, 1, 2, 3]) out['w' + workers] = await runFeeder({ steps: 5, workers, prefetch: 1, adapt: true });
        for (const prefetch of [0, 2]) out['p' + prefetch] = await runFeeder({ steps: 5, workers: 2, prefetch });
        const { InputFeeder } = require(${JSON.stringify(dist('src/train/feeder.js'))});
        const { getAugmentation } = require(${JSON.stringify(dist('src/data/augment.js'))});
        const { RandomState } = require(${JSON.stringify(dist('src/random.js'))});
        const { syntheticData } = require(${JSON.stringify(dist('test/helpers/synthetic.js'))});
        const strong = { augmentation: getAugmentation('cifar10+ctaugment'), views: 1 };
        const f = new InputFeeder(syntheticData(), getAugmentation('cifar10'), new RandomState(1), { views: 1, uratio: 1, strong, workers: 2 });
        f.setState({ ...f.getState(), pendingAugmentation: [[{ version: 7 }]] });
        out.error = await f.next(4).then(() => 'none', (e) => e.constructor.name + ': ' + e.message);
        await f.close();
        process.stdout.write(JSON.stringify(out));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, FeederRunResult> & { error: string };
    // a worker's failure arrives as an ordinary error
    expect(out.error).toMatch(/^Error: CTAugment state is invalid/);
    const adapted = await runFeeder({ steps: 5, prefetch: 1, adapt: true });
    const still = await runFeeder({ steps: 5, prefetch: 1 });
    for (const w of [0, 1, 2, 3]) {
      expect([w, out[`w${w}`].workers]).toEqual([w, w]);
      expect([w, out[`w${w}`].digests]).toEqual([w, adapted.digests]);
    }
    for (const p of [0, 2]) {
      expect(out[`p${p}`].workers).toBe(2);
      expect([p, out[`p${p}`].digests]).toEqual([p, still.digests]);
    }
  });

  test('training takes the same steps whatever the worker count, and resumes across worker counts', async () => {
    const lib = (file: string) => JSON.stringify(dist(file));
    const script = `
      const fs = require('fs');
      const os = require('os');
      const path = require('path');
      const { selectBackend } = require(${lib('src/backend/select.js')});
      const { fixmatch } = require(${lib('src/algorithms/fixmatch.js')});
      const { resolveSettings, toTrainConfig } = require(${lib('src/train/config.js')});
      const { train } = require(${lib('src/train/trainer.js')});
      const { syntheticData } = require(${lib('test/helpers/synthetic.js')});
      (async () => {
        await selectBackend('wasm');
        const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-feeder-train-'));
        const settings = resolveSettings(fixmatch, {}, { arch: 'te_cnn', batch: 8, uratio: 2, train_kimg: 1, report_kimg: 1, save_kimg: 1, eval_batch: 16, confidence: 0.6 });
        const run = async (name, augmentWorkers, stopAfter) => {
          const cfg = { ...toTrainConfig(fixmatch, settings, { trainDir: path.join(root, name), seed: 4, augment: 'cifar10' }), augmentWorkers };
          const losses = [];
          let steps = 0;
          const r = await train(cfg, syntheticData(), { onStep: (_, l) => losses.push(l), shouldStop: () => ++steps > stopAfter });
          return { losses, resumedFrom: r.resumedFrom };
        };
        const out = { w0: await run('a', 0, 16), w2: await run('b', 2, 16) };
        out.first = await run('c', 2, 6);
        out.second = await run('c', 1, 10);
        fs.rmSync(root, { recursive: true, force: true });
        process.stdout.write(JSON.stringify(out));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 300_000 });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as Record<'w0' | 'w2' | 'first' | 'second', { losses: number[]; resumedFrom: number }>;
    expect(out.w0.losses).toHaveLength(16);
    expect(out.w0.losses.every(Number.isFinite)).toBe(true);
    expect(new Set(out.w0.losses).size).toBe(16);
    expect(out.w2.losses).toEqual(out.w0.losses);
    expect(out.first.losses).toEqual(out.w0.losses.slice(0, 6));
    expect(out.second.resumedFrom).toBe(6 * 8);
    expect(out.second.losses).toEqual(out.w0.losses.slice(6, 16));
  }, 300_000);
});
