import * as tf from '@tensorflow/tfjs';
import { toFloatImages } from '../data/augment';
import { ImageSet, imageSize } from './dataset';

/**
 * Class probabilities for every image of a set, in batches, with whatever forward function the
 * caller gives (EMA weights, inference-mode batch norm for evaluation).
 */
export async function predictProbabilities(
  set: Pick<ImageSet, 'images' | 'count' | 'shape'>,
  forward: (x: tf.Tensor4D) => tf.Tensor2D,
  batch: number,
): Promise<Float32Array[]> {
  const size = imageSize(set.shape);
  const { height: h, width: w, channels: c } = set.shape;
  const out: Float32Array[] = [];
  for (let start = 0; start < set.count; start += batch) {
    const n = Math.min(batch, set.count - start);
    const probs = tf.tidy(() => tf.softmax(forward(tf.tensor4d(toFloatImages(set.images, start, n, size), [n, h, w, c]))));
    const values = (await probs.data()) as Float32Array;
    probs.dispose();
    const k = values.length / n;
    for (let i = 0; i < n; i++) out.push(values.slice(i * k, (i + 1) * k));
  }
  return out;
}

export function argmax(p: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
  return best;
}
