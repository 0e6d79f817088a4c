import * as tf from '@tensorflow/tfjs';
import { supervised } from '../src/algorithms/supervised';
import type { Inputs } from '../src/algorithms/types';
import { selectBackend } from '../src/backend/select';
import { buildModel } from '../src/models';
import { RandomState } from '../src/random';
import { learningRate } from '../src/train/optimizer';
import { NesterovSgd } from '../src/train/sgd';
import { makeForward, trainStep, type StepSettings } from '../src/train/step';
import { WeightStore } from '../src/train/weights';
import { trainingBackends } from './helpers/backends';
import { bandImages } from './helpers/synthetic';

/**
 * FixMatch's optimisation recipe: Nesterov SGD as TensorFlow's MomentumOptimizer computes it,
 * the cosine learning-rate decay, and weight decay as an L2 term on kernels only.
 */

test('cosine decay: lr * cos(7 pi k / 16 K)', () => {
  expect(learningRate(0.03, 'cosine', 0, 1000)).toBe(0.03);
  expect(learningRate(0.03, 'cosine', 500, 1000)).toBeCloseTo(0.03 * Math.cos((7 * Math.PI) / 32), 12);
  expect(learningRate(0.03, 'cosine', 1000, 1000)).toBeCloseTo(0.03 * Math.cos((7 * Math.PI) / 16), 12);
  expect(learningRate(0.03, 'none', 500, 1000)).toBe(0.03);
});

describe.each(['cpu', ...trainingBackends()])('Nesterov SGD on %s', (backend) => {
  beforeAll(async () => {
    await selectBackend(backend);
  });

  test('three updates match accum = m accum + g; w -= lr (g + m accum)', async () => {
    const w0 = [0.5, -1, 2];
    const grads = [
      [0.1, 0.2, -0.3],
      [-0.4, 0.5, 0.6],
      [0.7, -0.8, 0.9],
    ];
    const lrs = [0.1, 0.05, 0.2];
    const p = tf.variable(tf.tensor1d(w0), true, `sgd-test-${backend}`);
    const sgd = new NesterovSgd(3, 0.1, 0.9);
    const w = w0.slice();
    const accum = [0, 0, 0];
    for (let s = 0; s < 3; s++) {
      const g = tf.tensor1d(grads[s]);
      sgd.apply(p, g, lrs[s]);
      g.dispose();
      for (let i = 0; i < 3; i++) {
        accum[i] = 0.9 * accum[i] + grads[s][i];
        w[i] -= lrs[s] * (grads[s][i] + 0.9 * accum[i]);
      }
    }
    const got = await p.data();
    w.forEach((v, i) => expect(got[i]).toBeCloseTo(v, 6));
    const a = await sgd.accum.data();
    accum.forEach((v, i) => expect(a[i]).toBeCloseTo(v, 6));
    expect(sgd.t).toBe(3);
    expect(Object.keys(sgd.slots())).toEqual(['sgd_momentum']);
    sgd.dispose();
    p.dispose();
  });

  test('the L2 term adds wd * sum(kernel^2)/2 to the loss and pulls kernels only', async () => {
    const model = buildModel({ arch: 'resnet', nclass: 2, inputShape: [8, 8, 1], filters: 2, scales: 1, repeat: 1 });
    const images = bandImages(8, 2, 8, 1);
    const inputs = (): Inputs => ({
      x: tf.tensor4d(Float32Array.from(images.images, (v) => (v * 2) / 255 - 1), [8, 8, 8, 1]),
      labels: tf.tensor1d(images.labels, 'int32'),
      u: [],
    });
    // three identical starts: no decay, L2 with wd, decoupled with wd
    const run = async (wd: number, wdMode: 'l2' | 'decoupled') => {
      const weights = new WeightStore(model, new RandomState(11));
      const before = new Map<string, Float32Array>();
      for (const [n, v] of weights.views('param')) before.set(n, Float32Array.from(await v.data()));
      const l2 = (await (async () => {
        const t = weights.kernelL2();
        const v = (await t.data())[0];
        t.dispose();
        return v;
      })()) as number;
      const sgd = new NesterovSgd(weights.paramCount(), 0.1, 0.9);
      const rng = new RandomState(2);
      const settings: StepSettings = { algorithm: supervised, hp: { smoothing: 0 }, lr: 0.1, wd, ema: 0.999, batch: 8, nclass: 2, totalImages: 1024, wdMode };
      const out = await trainStep(settings, makeForward(model, weights, rng), weights, sgd, rng, inputs(), 0);
      const after = new Map<string, Float32Array>();
      for (const [n, v] of weights.views('param')) after.set(n, Float32Array.from(await v.data()));
      sgd.dispose();
      weights.dispose();
      return { out, before, after, l2 };
    };
    const plain = await run(0, 'l2');
    const withL2 = await run(0.01, 'l2');
    let expectL2 = 0;
    for (const spec of model.params) if (spec.decay) for (const v of plain.before.get(spec.name)!) expectL2 += (v * v) / 2;
    expect(withL2.l2).toBeCloseTo(expectL2, 3);
    expect(withL2.out.scalars['losses/wd']).toBeCloseTo(expectL2, 3);
    expect(withL2.out.loss).toBeCloseTo(plain.out.loss + 0.01 * expectL2, 4);
    // first Nesterov step: w -= lr (1 + m) (g + wd w) -> the L2 run differs by -lr (1 + m) wd w0 on kernels, nothing elsewhere
    for (const spec of model.params) {
      const w0 = plain.before.get(spec.name)!;
      const a = plain.after.get(spec.name)!;
      const b = withL2.after.get(spec.name)!;
      let maxErr = 0;
      for (let i = 0; i < w0.length; i++) {
        const want = spec.decay ? -0.1 * 1.9 * 0.01 * w0[i] : 0;
        maxErr = Math.max(maxErr, Math.abs(b[i] - a[i] - want));
      }
      expect([spec.name, maxErr < 1e-5]).toEqual([spec.name, true]);
    }
    expect(model.params.some((p) => !p.decay)).toBe(true);
    // decoupled mode leaves the loss alone and shrinks kernels after the step instead
    const decoupled = await run(0.01, 'decoupled');
    expect(decoupled.out.loss).toBeCloseTo(plain.out.loss, 5);
    expect(decoupled.out.scalars['losses/wd']).toBeUndefined();
  });
});
