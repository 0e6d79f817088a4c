import type { Rng } from '../random';
import { Augmentation, u8Augmentation } from './augment-base';
import { cutoutSquare, getOp, RANDAUGMENT_OPS } from './augment-ops';
import type { ImageShape } from './image-ops';

/**
 * RandAugment as FixMatch uses it for strong augmentation: `nOps` operations drawn uniformly with
 * replacement from RANDAUGMENT_OPS, each at a magnitude drawn uniformly from its range (FixMatch's
 * "randomised magnitude" variant, not a fixed global magnitude), then Cutout at full level (a
 * mid-grey square half the image side, as FixMatch's code applies after the policy).
 */

export interface RandAugmentOptions {
  /** Operations per image (FixMatch: 2). */
  nOps?: number;
  /** Apply the Cutout square after the operations (FixMatch: yes). */
  cutout?: boolean;
}

/** One image through RandAugment, on uint8 pixels. Draws: per op an index and a level, then cutout. */
export function randAugmentU8(img: Uint8Array, shape: ImageShape, rng: Rng, opts: RandAugmentOptions = {}): Uint8Array {
  const nOps = opts.nOps ?? 2;
  let out = img;
  for (let i = 0; i < nOps; i++) {
    const op = getOp(RANDAUGMENT_OPS[rng.randint(0, RANDAUGMENT_OPS.length)]);
    const levels = op.bins.map(() => rng.randomSample());
    out = op.apply(out, shape, levels, 'randaugment', rng);
  }
  if (opts.cutout ?? true) out = cutoutSquare(out, shape, 1, rng);
  return out === img ? img.slice() : out;
}

export function createRandAugment(opts: RandAugmentOptions = {}): Augmentation {
  const nOps = opts.nOps ?? 2;
  const cutout = opts.cutout ?? true;
  return u8Augmentation(
    'randaugment',
    `RandAugment (FixMatch): ${nOps} random ops at random magnitudes${cutout ? ', then Cutout' : ''}`,
    (img, shape, rng) => randAugmentU8(img, shape, rng, { nOps, cutout }),
  );
}
