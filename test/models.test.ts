import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/select';
import { UserError } from '../src/errors';
import { ARCHS, buildModel, type ArchOptions } from '../src/models';
import type { ForwardContext } from '../src/models/layers';
import { RandomState } from '../src/random';
import { WeightStore } from '../src/train/weights';
import { trainingBackends } from './helpers/backends';

function gradsOf(backend: string, arch: ArchOptions) {
  return async () => {
    await selectBackend(backend);
    const model = buildModel(arch);
    const [h, w, c] = arch.inputShape;
    const store = new WeightStore(model, new RandomState(5));
    const rng = new RandomState(6);
    const x = tf.tensor4d(Float32Array.from({ length: 4 * h * w * c }, () => rng.uniform(-1, 1)), [4, h, w, c]);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
    const bn = new Map<string, tf.Tensor>();
    const { value, grads } = tf.variableGrads(() => {
      const params = store.paramViews();
      const ctx: ForwardContext = { training: true, param: (n) => params.get(n)!, state: (n) => store.views('state').get(n)!, bnUpdates: bn };
      return tf.losses.softmaxCrossEntropy(labels, model.forward(x, ctx)) as tf.Scalar;
    }, store.trainable());
    const flatGrad = Array.from(await grads[store.param.name].data());
    // data(), not dataSync(): webgpu cannot read synchronously in Node
    const read = async (t: tf.Tensor) => Array.from(await t.data());
    const out = {
      loss: (await value.data())[0],
      grads: Object.fromEntries(store.layout.entries.map((e) => [e.name, flatGrad.slice(e.offset, e.offset + e.size)] as const)),
      bn: Object.fromEntries(await Promise.all([...bn].map(async ([k, t]) => [k, await read(t)] as const))),
    };
    tf.dispose([value, x, labels, ...Object.values(grads), ...bn.values()]);
    store.dispose();
    return out;
  };
}

const SMALL: Record<string, ArchOptions> = {
  resnet: { arch: 'resnet', nclass: 3, inputShape: [8, 8, 3], filters: 4, scales: 2, repeat: 1 },
  cnn13: { arch: 'cnn13', nclass: 3, inputShape: [12, 12, 3], filters: 2, scales: 3, repeat: 4 },
  convnet: { arch: 'convnet', nclass: 3, inputShape: [8, 8, 3], filters: 2, scales: 2, repeat: 4 },
};
const BN_STATS: Record<string, number> = { resnet: 10, cnn13: 18, convnet: 0 }; // mean and variance per batch norm

test.each(Object.keys(SMALL))('the %s computes the same loss, gradients and batch-norm statistics on every training backend as on cpu', async (name) => {
  const ref = await gradsOf('cpu', SMALL[name])();
  expect(Object.keys(ref.bn)).toHaveLength(BN_STATS[name]);
  for (const b of trainingBackends()) {
    const got = await gradsOf(b, SMALL[name])();
    expect(got.loss).toBeCloseTo(ref.loss, 4);
    for (const [k, g] of Object.entries(ref.grads)) {
      const h = got.grads[k];
      const scale = Math.max(1, ...g.map(Math.abs));
      const diff = Math.max(...g.map((v, i) => Math.abs(v - h[i])));
      expect([b, k, diff / scale < 1e-4]).toEqual([b, k, true]);
    }
    for (const [k, v] of Object.entries(ref.bn)) {
      const diff = Math.max(...v.map((a, i) => Math.abs(a - got.bn[k][i])));
      expect([b, k, diff < 1e-4]).toEqual([b, k, true]);
    }
  }
});

// ---- parameter counts, worked out here from the architectures (workflow-spec.md 4.1, 4.2) ----
const conv = (k: number, cin: number, cout: number) => k * k * cin * cout + cout; // kernel + bias
const bn = (c: number) => 2 * c; // gamma, beta (the moving statistics are not trainable)
const dense = (fin: number, fout: number) => fin * fout + fout;

function wrnCount(filters: number, scales: number, repeat: number, channels: number, nclass: number): number {
  let n = conv(3, channels, 16);
  let cin = 16;
  for (let s = 0; s < scales; s++) {
    const w = filters << s;
    for (let i = 0; i < repeat; i++) {
      n += bn(cin) + conv(3, cin, w) + bn(w) + conv(3, w, w);
      if (cin !== w) n += conv(1, cin, w);
      cin = w;
    }
  }
  return n + bn(cin) + dense(cin, nclass);
}

function cnn13Count(f: number, channels: number, nclass: number): number {
  const convs: Array<[number, number, number]> = [
    [3, channels, f], [3, f, f], [3, f, f],
    [3, f, 2 * f], [3, 2 * f, 2 * f], [3, 2 * f, 2 * f],
    [3, 2 * f, 4 * f], [1, 4 * f, 2 * f], [1, 2 * f, f],
  ];
  return convs.reduce((n, [k, i, o]) => n + conv(k, i, o) + bn(o), 0) + dense(f, nclass);
}

function convnetCount(f: number, scales: number, channels: number, nclass: number): number {
  let n = conv(3, channels, f);
  let cin = f;
  for (let s = 0; s < scales; s++) {
    n += conv(3, cin, f << s) + conv(3, f << s, f << (s + 1));
    cin = f << (s + 1);
  }
  return n + conv(3, cin, nclass);
}

function countOf(o: Partial<ArchOptions> & { arch: string }): number {
  const model = buildModel({ nclass: 10, inputShape: [32, 32, 3], filters: 32, scales: 0, repeat: 4, ...o });
  return model.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
}

test('parameter counts: WRN-28-2 is 1.47 M for 10 classes, WRN-28-135 about 26 M', () => {
  expect(wrnCount(32, 3, 4, 3, 10)).toBe(1469642);
  expect(countOf({ arch: 'resnet' })).toBe(1469642);
  const large = countOf({ arch: 'resnet', filters: 135 });
  expect(large).toBe(wrnCount(135, 3, 4, 3, 10));
  expect(large).toBeGreaterThan(25.5e6);
  expect(large).toBeLessThan(26.5e6);
  expect(countOf({ arch: 'resnet', inputShape: [96, 96, 3], scales: 4 })).toBe(wrnCount(32, 4, 4, 3, 10));
  expect(countOf({ arch: 'resnet', nclass: 100 })).toBe(wrnCount(32, 3, 4, 3, 100));
});

test('parameter counts: cnn13, convnet and the small MNIST CNN', () => {
  expect(countOf({ arch: 'cnn13' })).toBe(cnn13Count(32, 3, 10));
  expect(countOf({ arch: 'cnn13', filters: 128 })).toBe(cnn13Count(128, 3, 10)); // the Mean Teacher paper's width
  expect(cnn13Count(128, 3, 10)).toBe(3123850);
  expect(countOf({ arch: 'convnet' })).toBe(convnetCount(32, 3, 3, 10));
  expect(convnetCount(32, 3, 3, 10)).toBe(605226);
  // two weight-normalised 3x3 convolutions (v, g, bias) and a dense layer on 7x7x32 features
  const teCnn = 9 * 1 * 16 + 16 + 16 + (9 * 16 * 32 + 32 + 32) + dense(7 * 7 * 32, 10);
  expect(countOf({ arch: 'te_cnn', inputShape: [28, 28, 1] })).toBe(teCnn);
});

test('every --arch builds and gives [batch, nclass] logits in inference mode', async () => {
  await selectBackend('cpu');
  for (const arch of ARCHS) {
    const opts: ArchOptions = { arch, nclass: 5, inputShape: [16, 16, 3], filters: 4, scales: arch === 'cnn13' ? 3 : 0, repeat: 1 };
    const model = buildModel(opts);
    const store = new WeightStore(model, new RandomState(1));
    const y = tf.tidy(() => {
      const ctx: ForwardContext = { training: false, param: (n) => store.views('param').get(n)!, state: (n) => store.views('state').get(n)!, seed: 1 };
      return model.forward(tf.zeros([2, 16, 16, 3]) as tf.Tensor4D, ctx);
    });
    expect([arch, y.shape]).toEqual([arch, [2, 5]]);
    expect(Array.from(y.dataSync()).every(Number.isFinite)).toBe(true);
    y.dispose();
    store.dispose();
  }
});

test('cnn13 is defined for scales 3 only, as the original asserts; convnet refuses to pool an image away', () => {
  expect(() => buildModel({ arch: 'cnn13', nclass: 10, inputShape: [96, 96, 3], filters: 32, scales: 0, repeat: 4 })).toThrow(UserError);
  expect(() => buildModel({ arch: 'cnn13', nclass: 10, inputShape: [32, 32, 3], filters: 32, scales: 4, repeat: 4 })).toThrow(/scales 3/);
  expect(() => buildModel({ arch: 'cnn13', nclass: 10, inputShape: [8, 8, 3], filters: 32, scales: 3, repeat: 4 })).toThrow(/at least 12x12/);
  expect(() => buildModel({ arch: 'convnet', nclass: 10, inputShape: [8, 8, 3], filters: 32, scales: 4, repeat: 4 })).toThrow(UserError);
  expect(() => buildModel({ arch: 'shake', nclass: 10, inputShape: [32, 32, 3], filters: 32, scales: 0, repeat: 4 })).toThrow(/valid: resnet, cnn13, convnet, te_cnn/);
});
