import type { Rng } from '../random';
import type { ImageShape } from './image-ops';

export type { ImageShape } from './image-ops';

/**
 * A training-time augmentation: reads one uint8 H×W×C image and writes the augmented image. Every
 * random draw comes from the `rng` passed in, so one seeded generator per image (or per run) makes
 * the result reproducible. `apply` and `applyU8` make the same draws; `apply` writes what the
 * networks see (x·2/255 − 1, in [-1, 1]), `applyU8` the 0..255 pixels (precomputed copies, chaining).
 */
export interface Augmentation {
  readonly name: string;
  readonly description: string;
  /** Writes the augmented `src` image into `dst` at `dstOffset` (float32, [-1, 1]). */
  apply(src: Uint8Array, srcOffset: number, dst: Float32Array, dstOffset: number, shape: ImageShape, rng: Rng): void;
  /** Writes the augmented `src` image into `dst` at `dstOffset` (uint8, 0..255). */
  applyU8(src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number, shape: ImageShape, rng: Rng): void;
}

/** An augmentation with state that training adapts and checkpoints (CTAugment). */
export interface StatefulAugmentation extends Augmentation {
  /** Plain JSON-serialisable state. */
  getState(): unknown;
  /** Restores a getState() result; throws on a malformed one. */
  setState(state: unknown): void;
}

export function isStateful(a: Augmentation): a is StatefulAugmentation {
  return typeof (a as Partial<StatefulAugmentation>).getState === 'function' && typeof (a as Partial<StatefulAugmentation>).setState === 'function';
}

export const SCALE = 2 / 255;

export function u8ToFloat(src: Uint8Array, dst: Float32Array, dstOffset: number): void {
  for (let i = 0; i < src.length; i++) dst[dstOffset + i] = src[i] * SCALE - 1;
}

/** An augmentation defined on whole uint8 images; the float output is the uint8 result rescaled. */
export function u8Augmentation(
  name: string,
  description: string,
  fn: (img: Uint8Array, shape: ImageShape, rng: Rng) => Uint8Array,
): Augmentation {
  const run = (src: Uint8Array, off: number, shape: ImageShape, rng: Rng): Uint8Array =>
    fn(src.subarray(off, off + shape.height * shape.width * shape.channels), shape, rng);
  return {
    name,
    description,
    apply(src, srcOffset, dst, dstOffset, shape, rng) {
      u8ToFloat(run(src, srcOffset, shape, rng), dst, dstOffset);
    },
    applyU8(src, srcOffset, dst, dstOffset, shape, rng) {
      dst.set(run(src, srcOffset, shape, rng), dstOffset);
    },
  };
}
