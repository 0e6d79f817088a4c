import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/select';
import { buildModel } from '../src/models';
import type { ForwardContext } from '../src/models/layers';
import { RandomState } from '../src/random';
import { WeightStore } from '../src/train/weights';
import { trainingBackends } from './helpers/backends';

function gradsOf(backend: string) {
  return async () => {
    await selectBackend(backend);
    const model = buildModel({ arch: 'resnet', nclass: 3, inputShape: [8, 8, 3], filters: 4, scales: 2, repeat: 1 });
    const w = new WeightStore(model, new RandomState(5));
    const rng = new RandomState(6);
    const x = tf.tensor4d(Float32Array.from({ length: 4 * 8 * 8 * 3 }, () => rng.uniform(-1, 1)), [4, 8, 8, 3]);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 1], 'int32'), 3);
    const bn = new Map<string, tf.Tensor>();
    const ctx: ForwardContext = { training: true, param: (n) => w.params.get(n)!, state: (n) => w.state.get(n)!, bnUpdates: bn };
    const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.forward(x, ctx)) as tf.Scalar, w.trainable());
    const out = { loss: value.dataSync()[0], grads: Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, Array.from(g.dataSync())])), bn: Object.fromEntries([...bn].map(([k, t]) => [k, Array.from(t.dataSync())])) };
    tf.dispose([value, x, labels, ...Object.values(grads), ...bn.values()]);
    w.dispose();
    return out;
  };
}

test('the resnet computes the same loss, gradients and batch-norm statistics on every training backend as on cpu', async () => {
  const ref = await gradsOf('cpu')();
  expect(Object.keys(ref.bn)).toHaveLength(10); // five batch norms, mean and variance each
  for (const b of trainingBackends()) {
    const got = await gradsOf(b)();
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
