import type { ImageSet, TrainingData } from '../../src/train/dataset';

/**
 * A tiny, learnable image set: class k lights up the k-th horizontal band of an HxW grey image,
 * with some seeded noise. Small enough that a training test runs in seconds on any backend.
 */
export function bandImages(count: number, nclass: number, size = 8, seed = 1): ImageSet {
  let s = seed >>> 0;
  const rand = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const images = new Uint8Array(count * size * size);
  const labels = new Int32Array(count);
  const band = size / nclass;
  for (let i = 0; i < count; i++) {
    const k = i % nclass;
    labels[i] = k;
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const on = y >= k * band && y < (k + 1) * band;
        images[i * size * size + y * size + x] = Math.round((on ? 200 : 30) + rand() * 40);
      }
    }
  }
  return { images, labels, count, shape: { height: size, width: size, channels: 1 } };
}

export function syntheticData(nclass = 2, size = 8): TrainingData {
  const labeled = bandImages(8, nclass, size, 1);
  return {
    name: `synthetic.1@8-8`,
    base: 'synthetic',
    labeled,
    unlabeled: bandImages(32, nclass, size, 2),
    valid: bandImages(8, nclass, size, 3),
    test: bandImages(16, nclass, size, 4),
    nclass,
    shape: labeled.shape,
  };
}
