import type { Rng } from '../random';
import * as ops from './image-ops';
import type { ImageShape } from './image-ops';

/**
 * The operations RandAugment and CTAugment draw from, as the FixMatch paper lists them (its
 * tables of RandAugment and CTAugment transformations), each taking normalised levels in [0, 1]
 * that a flavour maps to its own range:
 *
 *   op            RandAugment (paper)          CTAugment (paper; bins over [0, 1])
 *   AutoContrast  full                          blend with the original, weight v
 *   Brightness    factor 0.05 + 0.9v            factor 0.1 + 1.9v
 *   Color         factor 0.05 + 0.9v            factor 0.1 + 1.9v
 *   Contrast      factor 0.05 + 0.9v            factor 0.1 + 1.9v
 *   Cutout        (applied after, see below)    square of side ≈ v/2 of the image
 *   Equalize      full                          blend with the original, weight v
 *   Identity      -                             -
 *   Posterize     4..8 bits                     1..8 bits (8 bins)
 *   Rotate        ±30°                          ±30°
 *   Sharpness     factor 0.05 + 0.9v            factor 0.1 + 1.9v
 *   ShearX/Y      ±0.3                          ±0.3
 *   Solarize      threshold 256v                threshold 256v
 *   TranslateX/Y  ±0.3 of the image size        ±0.3 of the image size
 *
 * Factor 1 is the unchanged image for the enhancement ops (0 black / grey / flat / blurred). The
 * paper's RandAugment range [0.05, 0.95] only ever weakens the image; Google's code draws
 * [0.1, 1.9] there too, and its CTAugment code rotates ±45° and translates by a fraction of a pixel
 * (it passes the fraction as the affine offset), both of which we take from the paper instead.
 */

export type Flavour = 'randaugment' | 'ctaugment';

export interface AugmentOp {
  readonly name: string;
  /** Parameters, each with its number of CTAugment bins. */
  readonly bins: readonly number[];
  apply(img: Uint8Array, shape: ImageShape, levels: readonly number[], flavour: Flavour, rng: Rng): Uint8Array;
}

const enhanceFactor = (v: number, f: Flavour): number => (f === 'randaugment' ? 0.05 + 0.9 * v : 0.1 + 1.9 * v);
const signed = (v: number, max: number): number => (2 * v - 1) * max;

/** Blend weight v between the image (0) and the operation's full result (1). */
function blendFull(img: Uint8Array, full: Uint8Array, v: number): Uint8Array {
  if (v >= 1) return full;
  const out = new Uint8Array(img.length);
  for (let i = 0; i < img.length; i++) out[i] = ops.clampByte(img[i] + v * (full[i] - img[i]));
  return out;
}

/**
 * Cutout as FixMatch applies it: a mid-grey square of side 1 + ⌊level·min(H, W)·0.499⌋ (level 1
 * gives half the shorter side) centred on a uniformly drawn pixel and clipped at the borders.
 */
export function cutoutSquare(img: Uint8Array, shape: ImageShape, level: number, rng: Rng): Uint8Array {
  const side = 1 + Math.floor(level * Math.min(shape.height, shape.width) * 0.499);
  const cy = rng.randint(0, shape.height);
  const cx = rng.randint(0, shape.width);
  const half = Math.floor(side / 2);
  // [c - half, c + half): the originals' extent; a side of 1 still blanks one pixel
  const len = Math.max(1, 2 * half);
  return ops.fillRect(img, shape, cy - half, cx - half, len, len, ops.MID_GREY);
}

const OPS: AugmentOp[] = [
  {
    name: 'AutoContrast',
    bins: [17],
    apply: (img, s, [v], f) => (f === 'randaugment' ? ops.autoContrast(img, s) : blendFull(img, ops.autoContrast(img, s), v)),
  },
  { name: 'Brightness', bins: [17], apply: (img, s, [v], f) => ops.brightness(img, s, enhanceFactor(v, f)) },
  { name: 'Color', bins: [17], apply: (img, s, [v], f) => ops.color(img, s, enhanceFactor(v, f)) },
  { name: 'Contrast', bins: [17], apply: (img, s, [v], f) => ops.contrast(img, s, enhanceFactor(v, f)) },
  { name: 'Cutout', bins: [17], apply: (img, s, [v], _f, rng) => cutoutSquare(img, s, v, rng) },
  {
    name: 'Equalize',
    bins: [17],
    apply: (img, s, [v], f) => (f === 'randaugment' ? ops.equalize(img, s) : blendFull(img, ops.equalize(img, s), v)),
  },
  { name: 'Identity', bins: [], apply: (img) => img.slice() },
  {
    name: 'Posterize',
    bins: [8],
    apply: (img, s, [v], f) => ops.posterize(img, s, f === 'randaugment' ? 4 + Math.floor(v * 4.999) : 1 + Math.floor(v * 7.999)),
  },
  { name: 'Rotate', bins: [17], apply: (img, s, [v]) => ops.rotate(img, s, signed(v, 30)) },
  { name: 'Sharpness', bins: [17], apply: (img, s, [v], f) => ops.sharpness(img, s, enhanceFactor(v, f)) },
  { name: 'ShearX', bins: [17], apply: (img, s, [v]) => ops.shearX(img, s, signed(v, 0.3)) },
  { name: 'ShearY', bins: [17], apply: (img, s, [v]) => ops.shearY(img, s, signed(v, 0.3)) },
  { name: 'Solarize', bins: [17], apply: (img, s, [v]) => ops.solarize(img, s, Math.floor(v * 256.999)) },
  { name: 'TranslateX', bins: [17], apply: (img, s, [v]) => ops.translateX(img, s, signed(v, 0.3)) },
  { name: 'TranslateY', bins: [17], apply: (img, s, [v]) => ops.translateY(img, s, signed(v, 0.3)) },
];

export const AUGMENT_OPS: ReadonlyMap<string, AugmentOp> = new Map(OPS.map((o) => [o.name, o]));

/** RandAugment's pool: every op but Cutout, which FixMatch applies after the drawn ones. */
export const RANDAUGMENT_OPS: readonly string[] = OPS.filter((o) => o.name !== 'Cutout').map((o) => o.name);

/** CTAugment's pool: every op, Cutout included (it is also applied after, at full level). */
export const CTAUGMENT_OPS: readonly string[] = OPS.map((o) => o.name);

export function getOp(name: string): AugmentOp {
  const op = AUGMENT_OPS.get(name);
  if (!op) throw new Error(`unknown augmentation op '${name}'; valid: ${[...AUGMENT_OPS.keys()].join(', ')}`);
  return op;
}
