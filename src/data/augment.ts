import type { Rng } from '../random';
import { UserError } from '../errors';
import { Augmentation, isStateful, SCALE, StatefulAugmentation, u8Augmentation } from './augment-base';
import { CTAugment } from './ctaugment';
import * as ops from './image-ops';
import type { ImageShape } from './image-ops';
import { createRandAugment } from './randaugment';

export type { Augmentation, StatefulAugmentation } from './augment-base';
export type { ImageShape } from './image-ops';
export { isStateful } from './augment-base';

/**
 * Training-time augmentations as pure functions on typed arrays (no TensorFlow), selected by name.
 * Each reads one uint8 H×W×C image of any size and 1 or 3 channels (grey+alpha and RGBA work too:
 * alpha moves with the pixels and is left out of colour changes).
 *
 *   none      the image as it is
 *   cifar10   random horizontal flip, reflect-pad 4 and random crop
 *   svhn      reflect-pad 4 and random crop, no flip
 *   stl10     random horizontal flip, reflect-pad 12 and random crop
 *   mnist     reflect-pad 2 and random crop, no flip
 *   color     flip, brightness ±0.1, hue ±0.5 turn, saturation ×[0.1, 3], contrast ×[0.5, 1.5], pad 4
 *             and crop: the RealMix parameters, applied to values in [0, 1] as TensorFlow's colour
 *             ops assume (RealMix fed them 0..255 or [-1, 1], which makes brightness vanish and hue
 *             and saturation misbehave on negative values)
 *   cutout    random erasing with p = 0.3, area 2%..40%, aspect 0.3..3.33, one constant fill drawn
 *             uniformly over the pixel range: what RealMix's eraser intended (its version draws once
 *             at graph-tracing time, so it never varies per image and mostly never fires)
 *   randaugment, ctaugment   FixMatch's strong augmentations (./randaugment.ts, ./ctaugment.ts)
 *
 * Names join with '+' to chain: 'cifar10+randaugment' is FixMatch's strong augmentation (the
 * weak flip-and-shift, then RandAugment and Cutout).
 *
 * The pad-and-crop family is one index mapping: a random shift in [-pad, pad] with reflected
 * borders equals reflect-padding by `pad` and cropping at a random offset.
 */

/** Flip and shift with reflected borders, written as [-1, 1] floats. */
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
    const sy = ops.reflectIndex(y + dy, h);
    for (let x = 0; x < w; x++) {
      const xx = flip ? w - 1 - x : x;
      const sx = ops.reflectIndex(xx + dx, w);
      const s = srcOffset + (sy * w + sx) * c;
      const d = dstOffset + (y * w + x) * c;
      for (let k = 0; k < c; k++) dst[d + k] = src[s + k] * SCALE - 1;
    }
  }
}

interface PadCropDraw {
  flip: boolean;
  dy: number;
  dx: number;
}

function drawPadCrop(pad: number, flip: boolean, rng: Rng): PadCropDraw {
  const doFlip = flip && rng.randomSample() < 0.5;
  const dy = pad > 0 ? rng.randint(-pad, pad + 1) : 0;
  const dx = pad > 0 ? rng.randint(-pad, pad + 1) : 0;
  return { flip: doFlip, dy, dx };
}

function padCrop(name: string, description: string, pad: number, flip: boolean): Augmentation {
  return {
    name,
    description,
    apply(src, srcOffset, dst, dstOffset, shape, rng) {
      const d = drawPadCrop(pad, flip, rng);
      shiftFlip(src, srcOffset, dst, dstOffset, shape, d.dy, d.dx, d.flip);
    },
    applyU8(src, srcOffset, dst, dstOffset, shape, rng) {
      const d = drawPadCrop(pad, flip, rng);
      ops.shiftFlipU8(src, srcOffset, dst, dstOffset, shape, d.dy, d.dx, d.flip);
    },
  };
}

/**
 * RealMix's `color`: flip, then the four colour jitters on [0, 1] values, then pad 4 and crop.
 * Draw order: flip, brightness, hue, saturation, contrast, dy, dx.
 */
function colorJitter(): Augmentation {
  const run = (src: Uint8Array, off: number, shape: ImageShape, rng: Rng): { img: Float32Array; dy: number; dx: number } => {
    const { height: h, width: w, channels: c } = shape;
    const flip = rng.randomSample() < 0.5;
    const img = new Float32Array(h * w * c);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const s = off + (y * w + (flip ? w - 1 - x : x)) * c;
        const d = (y * w + x) * c;
        for (let k = 0; k < c; k++) img[d + k] = src[s + k] / 255;
      }
    }
    const brightness = rng.uniform(-0.1, 0.1);
    const hue = rng.uniform(-0.5, 0.5);
    const saturation = rng.uniform(0.1, 3);
    const contrast = rng.uniform(0.5, 1.5);
    ops.adjustBrightnessF(img, shape, brightness);
    ops.adjustHueSaturationF(img, shape, hue, saturation);
    ops.adjustContrastF(img, shape, contrast);
    return { img, dy: rng.randint(-4, 5), dx: rng.randint(-4, 5) };
  };
  const crop = (img: Float32Array, shape: ImageShape, dy: number, dx: number, write: (d: number, v: number) => void): void => {
    const { height: h, width: w, channels: c } = shape;
    for (let y = 0; y < h; y++) {
      const sy = ops.reflectIndex(y + dy, h);
      for (let x = 0; x < w; x++) {
        const s = (sy * w + ops.reflectIndex(x + dx, w)) * c;
        const d = (y * w + x) * c;
        for (let k = 0; k < c; k++) write(d + k, img[s + k]);
      }
    }
  };
  return {
    name: 'color',
    description: 'flip, brightness, hue, saturation and contrast jitter (on [0, 1] values), reflect-pad 4 and random crop',
    apply(src, srcOffset, dst, dstOffset, shape, rng) {
      const r = run(src, srcOffset, shape, rng);
      crop(r.img, shape, r.dy, r.dx, (d, v) => (dst[dstOffset + d] = v * 2 - 1));
    },
    applyU8(src, srcOffset, dst, dstOffset, shape, rng) {
      const r = run(src, srcOffset, shape, rng);
      crop(r.img, shape, r.dy, r.dx, (d, v) => (dst[dstOffset + d] = ops.clampByte(v * 255)));
    },
  };
}

export interface RandomErasingOptions {
  /** Probability that an image is erased at all. */
  p?: number;
  /** Erased area as a fraction of the image: [min, max]. */
  area?: [number, number];
  /** Aspect ratio (height / width) range: [min, max]. */
  aspect?: [number, number];
}

/**
 * Random erasing, per image: with probability p, a rectangle of random area and aspect that fits in
 * the image, at a uniformly drawn position, gets one constant value drawn uniformly from 0..255.
 * Sizes that do not fit are redrawn (up to 100 times, then clipped to the image), so an image drawn
 * for erasing is always erased.
 */
export function randomErasingU8(img: Uint8Array, shape: ImageShape, rng: Rng, opts: RandomErasingOptions = {}): Uint8Array {
  const p = opts.p ?? 0.3;
  const [aMin, aMax] = opts.area ?? [0.02, 0.4];
  const [rMin, rMax] = opts.aspect ?? [0.3, 1 / 0.3];
  if (rng.randomSample() >= p) return img.slice();
  const { height: H, width: W } = shape;
  let h = 0;
  let w = 0;
  for (let attempt = 0; attempt < 100; attempt++) {
    const area = rng.uniform(aMin, aMax) * H * W;
    const ratio = rng.uniform(rMin, rMax);
    h = Math.floor(Math.sqrt(area * ratio));
    w = Math.floor(Math.sqrt(area / ratio));
    if (h >= 1 && w >= 1 && h <= H && w <= W) break;
  }
  h = Math.min(H, Math.max(1, h));
  w = Math.min(W, Math.max(1, w));
  const top = rng.randint(0, H - h + 1);
  const left = rng.randint(0, W - w + 1);
  const fill = rng.randint(0, 256);
  return ops.fillRect(img, shape, top, left, h, w, fill);
}

interface Entry {
  description: string;
  create(): Augmentation;
}

const stateless = (a: Augmentation): Entry => ({ description: a.description, create: () => a });

const ENTRIES: Record<string, Entry> = {
  none: stateless(padCrop('none', 'no augmentation', 0, false)),
  cifar10: stateless(padCrop('cifar10', 'random horizontal flip, reflect-pad 4 and random crop', 4, true)),
  svhn: stateless(padCrop('svhn', 'reflect-pad 4 and random crop, no flip (digits)', 4, false)),
  stl10: stateless(padCrop('stl10', 'random horizontal flip, reflect-pad 12 and random crop', 12, true)),
  mnist: stateless(padCrop('mnist', 'reflect-pad 2 and random crop, no flip (digits at 28 px)', 2, false)),
  color: stateless(colorJitter()),
  cutout: stateless(
    u8Augmentation('cutout', 'random erasing per image (p 0.3, area 2-40%, aspect 0.3-3.33, fill uniform 0..255)', (img, shape, rng) =>
      randomErasingU8(img, shape, rng),
    ),
  ),
  randaugment: stateless(createRandAugment()),
  ctaugment: { description: new CTAugment().description, create: () => new CTAugment() },
};

/**
 * One instance of every augmentation, for listing names and descriptions. Use getAugmentation to
 * get one to train with: stateful ones (ctaugment) are created afresh there.
 */
export const AUGMENTATIONS: Readonly<Record<string, Augmentation>> = Object.fromEntries(
  Object.entries(ENTRIES).map(([k, e]) => [k, e.create()]),
);

export function augmentationNames(): string[] {
  return Object.keys(ENTRIES);
}

/** Augmentations applied one after the other, on uint8 pixels between steps. */
export class ChainedAugmentation implements Augmentation {
  readonly name: string;
  readonly description: string;

  constructor(readonly parts: readonly Augmentation[]) {
    this.name = parts.map((p) => p.name).join('+');
    this.description = parts.map((p) => p.description).join('; then ');
  }

  private through(src: Uint8Array, srcOffset: number, shape: ImageShape, rng: Rng, upTo: number): Uint8Array {
    const n = ops.imageLength(shape);
    let cur = src.subarray(srcOffset, srcOffset + n);
    for (let i = 0; i < upTo; i++) {
      const next = new Uint8Array(n);
      this.parts[i].applyU8(cur, 0, next, 0, shape, rng);
      cur = next;
    }
    return cur;
  }

  apply(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, shape: ImageShape, rng: Rng): void {
    const last = this.parts.length - 1;
    this.parts[last].apply(this.through(src, srcOffset, shape, rng, last), 0, dst, dstOffset, shape, rng);
  }

  applyU8(src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number, shape: ImageShape, rng: Rng): void {
    const last = this.parts.length - 1;
    this.parts[last].applyU8(this.through(src, srcOffset, shape, rng, last), 0, dst, dstOffset, shape, rng);
  }

  /** The parts that keep state (a CTAugment to update and checkpoint). */
  statefulParts(): StatefulAugmentation[] {
    return this.parts.filter(isStateful);
  }
}

/**
 * The augmentation called `name` (or a '+' chain of names). Stateful ones are new instances, so
 * two trainers never share CTAugment weights.
 */
export function getAugmentation(name: string): Augmentation {
  const parts = name.split('+').map((p) => p.trim());
  const unknown = parts.filter((p) => !Object.prototype.hasOwnProperty.call(ENTRIES, p));
  if (unknown.length > 0 || parts.length === 0) {
    throw new UserError(`unknown augmentation '${unknown[0] ?? name}'; valid: ${augmentationNames().join(', ')} (chain them with +, e.g. cifar10+randaugment)`);
  }
  const made = parts.map((p) => ENTRIES[p].create());
  return made.length === 1 ? made[0] : new ChainedAugmentation(made);
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
