import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/select';
import { buildModel } from '../src/models';
import { RandomState } from '../src/random';
import { Adam } from '../src/train/adam';
import { loadCheckpoint, saveCheckpoint, type HostTensor } from '../src/train/checkpoint';
import { FlatLayout } from '../src/train/flat';
import { WeightStore } from '../src/train/weights';
import { values } from './helpers/kernel-parity';

/**
 * The flat weight store (src/train/flat.ts, weights.ts): every parameter, its EMA, the batch-norm
 * averages and the optimiser's moments live in one 1-D variable each. These tests check that the
 * per-name view the model and the checkpoints see is exactly what per-variable updates gave.
 */

const f32 = (x: number) => Math.fround(x);

beforeAll(async () => {
  await selectBackend('cpu');
});

function smallStore(seed = 3): WeightStore {
  const model = buildModel({ arch: 'resnet', nclass: 3, inputShape: [8, 8, 3], filters: 4, scales: 2, repeat: 1 });
  return new WeightStore(model, new RandomState(seed));
}

async function host(views: Map<string, tf.Tensor>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, t] of views) out.set(n, Float32Array.from(await t.data()));
  return out;
}

describe('FlatLayout', () => {
  const layout = new FlatLayout([
    { name: 'a', shape: [2, 3] },
    { name: 'b', shape: [4] },
    { name: 'c', shape: [1, 2, 2, 1] },
  ]);

  test('lays entries end to end and cuts them back with their shapes', async () => {
    expect(layout.entries.map((e) => [e.name, e.offset, e.size])).toEqual([
      ['a', 0, 6],
      ['b', 6, 4],
      ['c', 10, 4],
    ]);
    expect(layout.total).toBe(14);
    const flat = Float32Array.from({ length: 14 }, (_, i) => i * 0.5);
    const pieces = tf.tidy(() => layout.split(tf.tensor1d(flat)));
    expect(pieces.map((p) => p.shape)).toEqual([[2, 3], [4], [1, 2, 2, 1]]);
    expect(Array.from(await pieces[1].data())).toEqual([3, 3.5, 4, 4.5]);
    const back = layout.concat((e) => pieces[layout.entries.indexOf(e)]);
    expect(Array.from(await back.data())).toEqual(Array.from(flat));
    tf.dispose([...pieces, back]);
  });

  test('reads a checkpoint group, naming a missing or misshapen tensor', () => {
    const tensors = new Map<string, { shape: number[]; values: Float32Array }>([
      ['g/a', { shape: [2, 3], values: new Float32Array(6).fill(1) }],
      ['g/b', { shape: [4], values: new Float32Array(4).fill(2) }],
      ['g/c', { shape: [1, 2, 2, 1], values: new Float32Array(4).fill(3) }],
    ]);
    const ck = { header: { format: 1 as const, imagesSeen: 0, meta: {}, tensors: [] }, tensors };
    expect(Array.from(layout.readGroup(ck, 'g', 'x.sslckpt'))).toEqual([1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    tensors.set('g/b', { shape: [2, 2], values: new Float32Array(4) });
    expect(() => layout.readGroup(ck, 'g', 'x.sslckpt')).toThrow('checkpoint x.sslckpt: g/b has shape 2x2, the model expects 4');
    tensors.delete('g/b');
    expect(() => layout.readGroup(ck, 'g', 'x.sslckpt')).toThrow('checkpoint x.sslckpt has no g/b');
  });
});

describe('WeightStore', () => {
  test('gives the model one tensor per parameter, refreshed when the flat variable changes', async () => {
    const store = smallStore();
    const before = tf.memory().numTensors;
    const v1 = store.views('param');
    expect(store.views('param')).toBe(v1); // cached
    expect([...v1.keys()]).toEqual(store.model.params.map((p) => p.name));
    for (const p of store.model.params) expect(v1.get(p.name)!.shape).toEqual(p.shape);
    const first = await host(v1);
    store.decayKernels(0.5);
    const v2 = store.views('param');
    expect(v2).not.toBe(v1);
    const second = await host(v2);
    for (const p of store.model.params) {
      const want = first.get(p.name)!.map((x) => (p.decay ? f32(x * 0.5) : x));
      expect(second.get(p.name)).toEqual(want);
    }
    // the stale cut was freed: only the new one is held, with the per-element decay factors
    expect(tf.memory().numTensors).toBe(before + store.model.params.length + 1);
    store.dispose();
  });

  test('EMA, weight decay and batch-norm averages equal the per-variable arithmetic', async () => {
    const store = smallStore();
    const p0 = await host(store.views('param'));
    const s0 = await host(store.views('state'));
    // move the parameters away from the EMA so the average has something to do
    store.param.assign(tf.tidy(() => tf.add(store.param, tf.tensor1d(values([store.layout.total], 7)))));
    const p1 = await host(store.views('param'));
    store.updateEma(0.99);
    const ema = await host(store.views('ema'));
    for (const [n, v] of p1) {
      const e0 = p0.get(n)!;
      v.forEach((x, i) => expect(ema.get(n)![i]).toBe(f32(f32(e0[i] * f32(0.99)) + f32(x * f32(1 - 0.99)))));
    }
    const updates = new Map<string, tf.Tensor>();
    for (const e of store.stateLayout.entries) updates.set(e.name, tf.tensor(values(e.shape, e.offset + 1), e.shape));
    const u = await host(updates);
    store.applyBnUpdates(updates);
    const s1 = await host(store.views('state'));
    for (const [n, v] of s1) v.forEach((x, i) => expect(x).toBe(f32(f32(s0.get(n)![i] * f32(0.999)) + f32(u.get(n)![i] * f32(1 - 0.999)))));
    // one statistic missing: that one stays, the others move
    const first = store.stateLayout.entries[0].name;
    updates.get(first)!.dispose();
    updates.delete(first);
    store.applyBnUpdates(updates);
    const s2 = await host(store.views('state'));
    expect(s2.get(first)).toEqual(s1.get(first));
    const second = store.stateLayout.entries[1].name;
    expect(s2.get(second)).not.toEqual(s1.get(second));
    tf.dispose([...updates.values()]);
    store.dispose();
  });

  test('the L2 term counts kernels only and its gradient is the kernels themselves', async () => {
    const store = smallStore();
    const p = await host(store.views('param'));
    let want = 0;
    for (const spec of store.model.params) if (spec.decay) for (const x of p.get(spec.name)!) want += (x * x) / 2;
    const { value, grads } = tf.variableGrads(() => store.kernelL2(), store.trainable());
    expect((await value.data())[0]).toBeCloseTo(want, 3);
    const g = await grads[store.param.name].data();
    for (const spec of store.model.params) {
      const e = store.layout.entry(spec.name)!;
      const got = Array.from(g.subarray(e.offset, e.offset + e.size));
      expect(got).toEqual(spec.decay ? Array.from(p.get(spec.name)!) : new Array(e.size).fill(0));
    }
    tf.dispose([value, ...Object.values(grads)]);
    store.dispose();
  });

  test('saves and restores through a checkpoint, per parameter name', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-flat-'));
    const a = smallStore(3);
    a.decayKernels(0.9);
    a.updateEma(0.5);
    const file = path.join(dir, 'model.ckpt-00000064.sslckpt');
    const groups: Record<string, Map<string, HostTensor>> = await a.hostGroups();
    await saveCheckpoint(file, 64, groups, {});
    const ck = loadCheckpoint(file);
    expect(ck.tensors.has(`param/${a.model.params[0].name}`)).toBe(true);
    const b = smallStore(99);
    b.restore(ck, file);
    for (const g of ['param', 'ema', 'state'] as const) expect(await b.of(g).data()).toEqual(await a.of(g).data());
    expect(await host(b.views('ema'))).toEqual(await host(a.views('ema')));
    a.dispose();
    b.dispose();
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('Adam on the flat vector', () => {
  test('three updates follow TensorFlow Adam element by element', async () => {
    const n = 7;
    const p = tf.variable(tf.tensor1d(values([n], 1)), true);
    const adam = new Adam(n, 0.01);
    const w = Array.from(await p.data());
    const m = new Array(n).fill(0);
    const v = new Array(n).fill(0);
    let afterFirst = 0;
    for (let t = 1; t <= 3; t++) {
      const gv = values([n], 10 + t);
      const g = tf.tensor1d(gv);
      adam.apply(p, g, 0.01 * t);
      g.dispose();
      const alpha = (0.01 * t * Math.sqrt(1 - 0.999 ** t)) / (1 - 0.9 ** t);
      for (let i = 0; i < n; i++) {
        m[i] = 0.9 * m[i] + 0.1 * gv[i];
        v[i] = 0.999 * v[i] + 0.001 * gv[i] * gv[i];
        w[i] -= (alpha * m[i]) / (Math.sqrt(v[i]) + 1e-8);
      }
      if (t === 1) afterFirst = tf.memory().numTensors;
    }
    const got = await p.data();
    w.forEach((x, i) => expect(got[i]).toBeCloseTo(x, 5));
    const mm = await adam.m.data();
    m.forEach((x, i) => expect(mm[i]).toBeCloseTo(x, 6));
    expect(adam.t).toBe(3);
    expect(Object.keys(adam.slots())).toEqual(['adam_m', 'adam_v']);
    // its constants are made once: later steps add no tensors
    expect(tf.memory().numTensors).toBe(afterFirst);
    adam.dispose();
    p.dispose();
  });
});
