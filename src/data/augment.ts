import type { Rng } from '../random';
import { UserError } from '../errors';

/**
 * Training-time augmentations as pure functions on typed arrays (no TensorFlow): each reads one
 * uint8 HxWxC image and writes the augmented image, scaled to [-1, 1] as the originals feed their
 * networks (x * 2/255 - 1), into a float32 batch buffer. The pad-and-crop family is done as one
 * index mapping: a random shift in [-pad, pad] with reflected borders equals reflect-padding by
 * `pad` and cropping at a random offset, without materialising the padded image.
 */

export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

export interface Augmentation {
  readonly name: string;
  readonly description: string;
  /** Writes the augmented `src` image into `dst` at `dstOffset` (float32, [-1, 1]). */
  apply(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, shape: ImageShape, rng: Rng): void;
}

const SCALE = 2 / 255;

/** TF's REFLECT padding: mirror without repeating the edge pixel. */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

export function shiftFlip(
  src: Uint8Array,
  srcOffset: number,
  dst: Float32Array,
  dstOffset: number,
  shape: ImageShape,
  dy: number,
  dx: number,
  flip: boolean,
): void {
  const { height: h, width: w, channels: c } = shape;
  for (let y = 0; y < h; y++) {
    const sy = reflect(y + dy, h);
    for (let x = 0; x < w; x++) {
      const xx = flip ? w - 1 - x : x;
      const sx = reflect(xx + dx, w);
      const s = srcOffset + (sy * w + sx) * c;
      const d = dstOffset + (y * w + x) * c;
      for (let k = 0; k < c; k++) dst[d + k] = src[s + k] * SCALE - 1;
    }
  }
}

function padCrop(name: string, description: string, pad: number, flip: boolean): Augmentation {
  return {
    name,
    description,
    apply(src, srcOffset, dst, dstOffset, shape, rng) {
      const doFlip = flip && rng.randomSample() < 0.5;
      const dy = pad > 0 ? rng.randint(-pad, pad + 1) : 0;
      const dx = pad > 0 ? rng.randint(-pad, pad + 1) : 0;
      shiftFlip(src, srcOffset, dst, dstOffset, shape, dy, dx, doFlip);
    },
  };
}

export const AUGMENTATIONS: Record<string, Augmentation> = {
  none: padCrop('none', 'no augmentation', 0, false),
  cifar10: padCrop('cifar10', 'random horizontal flip, reflect-pad 4 and random crop', 4, true),
  svhn: padCrop('svhn', 'reflect-pad 4 and random crop, no flip (digits)', 4, false),
  stl10: padCrop('stl10', 'random horizontal flip, reflect-pad 12 and random crop', 12, true),
  mnist: padCrop('mnist', 'reflect-pad 2 and random crop, no flip (digits at 28 px)', 2, false),
};

export function getAugmentation(name: string): Augmentation {
  const a = AUGMENTATIONS[name];
  if (!a) throw new UserError(`unknown augmentation '${name}'; valid: ${Object.keys(AUGMENTATIONS).join(', ')}`);
  return a;
}

/** The augmentation a dataset family trains with by default, as the originals register them. */
export function defaultAugmentationFor(datasetBase: string): string {
  if (datasetBase.startsWith('svhn')) return 'svhn';
  if (datasetBase.startsWith('stl10')) return 'stl10';
  if (datasetBase.startsWith('mnist')) return 'mnist';
  return 'cifar10';
}

/** Un-augmented images as float32 in [-1, 1], for evaluation and inference. */
export function toFloatImages(src: Uint8Array, start: number, count: number, imageSize: number): Float32Array {
  const out = new Float32Array(count * imageSize);
  const base = start * imageSize;
  for (let i = 0; i < out.length; i++) out[i] = src[base + i] * SCALE - 1;
  return out;
}
