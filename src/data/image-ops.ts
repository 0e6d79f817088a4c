/**
 * Image operations on interleaved H×W×C uint8 pixels, the building blocks of the augmentations.
 * Pure functions, no TensorFlow: each returns a new array (or writes into one it is given) and never
 * changes its input.
 *
 * Colour operations work on the first three channels when there are at least three (RGB, with any
 * alpha passed through) and on the first channel otherwise (grey, grey+alpha); on a grey image an
 * operation that only changes colour (Color, hue, saturation) leaves the image as it is.
 *
 * Geometric operations (rotate, shear, translate) map each output pixel centre back into the input
 * and sample it bilinearly; input pixels outside the image read as `fill` (mid-grey by default), so
 * borders fade into the fill instead of showing stair steps. The originals used PIL's nearest
 * neighbour with a black fill; bilinear keeps small images (32 px) from aliasing, and mid-grey is 0 in
 * the [-1, 1] scale the networks see.
 */

export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

/** Mid-grey: 128 in uint8, ~0 in the [-1, 1] training scale. Fill of cutout and geometric borders. */
export const MID_GREY = 128;

export function pixelCount(s: ImageShape): number {
  return s.height * s.width;
}

export function imageLength(s: ImageShape): number {
  return s.height * s.width * s.channels;
}

/** Channels that carry colour: RGB of RGB(A), the grey channel of grey(+alpha). */
export function colourChannels(channels: number): number {
  return channels >= 3 ? 3 : 1;
}

export function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}

/** TF's REFLECT padding index: mirror without repeating the edge pixel. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - m;
}

/**
 * Flip (optional) then shift by (dy, dx) with reflected borders: the same as reflect-padding by
 * |shift| and cropping at an offset. Writes uint8 to `dst` at `dstOffset`.
 */
export function shiftFlipU8(
  src: Uint8Array,
  srcOffset: number,
  dst: Uint8Array,
  dstOffset: number,
  shape: ImageShape,
  dy: number,
  dx: number,
  flip: boolean,
): void {
  const { height: h, width: w, channels: c } = shape;
  for (let y = 0; y < h; y++) {
    const sy = reflectIndex(y + dy, h);
    for (let x = 0; x < w; x++) {
      const xx = flip ? w - 1 - x : x;
      const sx = reflectIndex(xx + dx, w);
      const s = srcOffset + (sy * w + sx) * c;
      const d = dstOffset + (y * w + x) * c;
      for (let k = 0; k < c; k++) dst[d + k] = src[s + k];
    }
  }
}

/** A lookup table applied to the colour channels. */
function applyLut(img: Uint8Array, shape: ImageShape, luts: Uint8Array[]): Uint8Array {
  const out = img.slice();
  const c = shape.channels;
  const cc = colourChannels(c);
  const n = pixelCount(shape);
  for (let k = 0; k < cc; k++) {
    const lut = luts[k];
    for (let p = 0; p < n; p++) out[p * c + k] = lut[img[p * c + k]];
  }
  return out;
}

function histogram(img: Uint8Array, shape: ImageShape, channel: number): Uint32Array {
  const h = new Uint32Array(256);
  const c = shape.channels;
  const n = pixelCount(shape);
  for (let p = 0; p < n; p++) h[img[p * c + channel]]++;
  return h;
}

/** Per channel, stretches [min, max] to [0, 255] (PIL's autocontrast without cut-off). */
export function autoContrast(img: Uint8Array, shape: ImageShape): Uint8Array {
  const luts: Uint8Array[] = [];
  for (let k = 0; k < colourChannels(shape.channels); k++) {
    const h = histogram(img, shape, k);
    let lo = 0;
    while (lo < 255 && h[lo] === 0) lo++;
    let hi = 255;
    while (hi > 0 && h[hi] === 0) hi--;
    const lut = new Uint8Array(256);
    if (hi <= lo) {
      for (let i = 0; i < 256; i++) lut[i] = i;
    } else {
      // integer arithmetic: (i - lo)·255/(hi - lo) in floating point can land just under a whole number
      for (let i = 0; i < 256; i++) lut[i] = clampByte(Math.floor(((i - lo) * 255) / (hi - lo)));
    }
    luts.push(lut);
  }
  return applyLut(img, shape, luts);
}

/**
 * Per-channel histogram equalisation as PIL does it: the step is the pixel count less the last
 * occupied bin's, over 255; a channel with a single level is left alone.
 */
export function equalize(img: Uint8Array, shape: ImageShape): Uint8Array {
  const luts: Uint8Array[] = [];
  for (let k = 0; k < colourChannels(shape.channels); k++) {
    const h = histogram(img, shape, k);
    let last = 255;
    while (last > 0 && h[last] === 0) last--;
    const total = pixelCount(shape);
    const step = Math.floor((total - h[last]) / 255);
    const lut = new Uint8Array(256);
    if (step === 0) {
      for (let i = 0; i < 256; i++) lut[i] = i;
    } else {
      let acc = Math.floor(step / 2);
      for (let i = 0; i < 256; i++) {
        lut[i] = Math.min(255, Math.floor(acc / step));
        acc += h[i];
      }
    }
    luts.push(lut);
  }
  return applyLut(img, shape, luts);
}

/** Keeps the top `bits` bits (1..8) of every colour value. */
export function posterize(img: Uint8Array, shape: ImageShape, bits: number): Uint8Array {
  const mask = (0xff << (8 - Math.max(1, Math.min(8, Math.round(bits))))) & 0xff;
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = i & mask;
  return applyLut(img, shape, [lut, lut, lut]);
}

/** Inverts every colour value at or above `threshold` (0..256; 256 changes nothing). */
export function solarize(img: Uint8Array, shape: ImageShape, threshold: number): Uint8Array {
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = i >= threshold ? 255 - i : i;
  return applyLut(img, shape, [lut, lut, lut]);
}

/** `degenerate + factor·(img − degenerate)` on the colour channels: PIL's ImageEnhance blend. */
export function blendColour(degenerate: Uint8Array, img: Uint8Array, shape: ImageShape, factor: number): Uint8Array {
  const out = img.slice();
  const c = shape.channels;
  const cc = colourChannels(c);
  const n = pixelCount(shape);
  for (let p = 0; p < n; p++) {
    for (let k = 0; k < cc; k++) {
      const i = p * c + k;
      out[i] = clampByte(degenerate[i] + factor * (img[i] - degenerate[i]));
    }
  }
  return out;
}

/** ITU-R 601 luma, as PIL's convert('L') computes it. */
function luma(img: Uint8Array, i: number, cc: number): number {
  return cc === 3 ? (img[i] * 299 + img[i + 1] * 587 + img[i + 2] * 114) / 1000 : img[i];
}

/** Factor 0 gives black, 1 the image, above 1 brighter. */
export function brightness(img: Uint8Array, shape: ImageShape, factor: number): Uint8Array {
  return blendColour(new Uint8Array(img.length), img, shape, factor);
}

/** Factor 0 gives the grey version, 1 the image, above 1 more saturated. No-op on grey images. */
export function color(img: Uint8Array, shape: ImageShape, factor: number): Uint8Array {
  const c = shape.channels;
  if (colourChannels(c) < 3) return img.slice();
  const grey = img.slice();
  for (let p = 0; p < pixelCount(shape); p++) {
    const i = p * c;
    const l = clampByte(luma(img, i, 3));
    grey[i] = grey[i + 1] = grey[i + 2] = l;
  }
  return blendColour(grey, img, shape, factor);
}

/** Factor 0 gives a flat image at the mean luma, 1 the image, above 1 more contrast. */
export function contrast(img: Uint8Array, shape: ImageShape, factor: number): Uint8Array {
  const c = shape.channels;
  const cc = colourChannels(c);
  const n = pixelCount(shape);
  let sum = 0;
  for (let p = 0; p < n; p++) sum += luma(img, p * c, cc);
  const mean = Math.floor(sum / n + 0.5);
  const flat = img.slice();
  for (let p = 0; p < n; p++) for (let k = 0; k < cc; k++) flat[p * c + k] = mean;
  return blendColour(flat, img, shape, factor);
}

/**
 * Factor 0 gives a smoothed image (3×3 kernel 1 1 1 / 1 5 1 / 1 1 1, over 13; border pixels kept),
 * 1 the image, above 1 sharper.
 */
export function sharpness(img: Uint8Array, shape: ImageShape, factor: number): Uint8Array {
  const { height: h, width: w, channels: c } = shape;
  const cc = colourChannels(c);
  const smooth = img.slice();
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      for (let k = 0; k < cc; k++) {
        let s = 0;
        for (let yy = -1; yy <= 1; yy++) for (let xx = -1; xx <= 1; xx++) s += img[((y + yy) * w + x + xx) * c + k];
        s += 4 * img[(y * w + x) * c + k];
        smooth[(y * w + x) * c + k] = clampByte(s / 13);
      }
    }
  }
  return blendColour(smooth, img, shape, factor);
}

/**
 * Inverse affine warp: output pixel centre (x, y), relative to the image centre, reads the input at
 * (a·x + b·y + tx, c·x + d·y + ty), also centre-relative. Bilinear; outside reads `fill`. Every channel
 * moves (alpha too).
 */
export function affine(
  img: Uint8Array,
  shape: ImageShape,
  m: { a: number; b: number; c: number; d: number; tx: number; ty: number },
  fill = MID_GREY,
): Uint8Array {
  const { height: h, width: w, channels: ch } = shape;
  const out = new Uint8Array(img.length);
  const cx = w / 2;
  const cy = h / 2;
  const at = (yy: number, xx: number, k: number): number =>
    yy < 0 || yy >= h || xx < 0 || xx >= w ? fill : img[(yy * w + xx) * ch + k];
  for (let y = 0; y < h; y++) {
    const oy = y + 0.5 - cy;
    for (let x = 0; x < w; x++) {
      const ox = x + 0.5 - cx;
      // input coordinates in pixel-index space (pixel i spans [i, i+1), centre i + 0.5)
      const sx = m.a * ox + m.b * oy + m.tx + cx - 0.5;
      const sy = m.c * ox + m.d * oy + m.ty + cy - 0.5;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const d = (y * w + x) * ch;
      for (let k = 0; k < ch; k++) {
        const top = at(y0, x0, k) * (1 - fx) + at(y0, x0 + 1, k) * fx;
        const bottom = at(y0 + 1, x0, k) * (1 - fx) + at(y0 + 1, x0 + 1, k) * fx;
        out[d + k] = clampByte(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return out;
}

/** Rotates the content by `degrees` counter-clockwise about the centre (PIL's sense). */
export function rotate(img: Uint8Array, shape: ImageShape, degrees: number, fill = MID_GREY): Uint8Array {
  const t = (degrees * Math.PI) / 180;
  const cos = Math.cos(t);
  const sin = Math.sin(t);
  // y points down, so a counter-clockwise turn on screen reads the input turned the other way
  return affine(img, shape, { a: cos, b: -sin, c: sin, d: cos, tx: 0, ty: 0 }, fill);
}

/** Output (x, y) reads input (x + r·y, y), about the centre. */
export function shearX(img: Uint8Array, shape: ImageShape, r: number, fill = MID_GREY): Uint8Array {
  return affine(img, shape, { a: 1, b: r, c: 0, d: 1, tx: 0, ty: 0 }, fill);
}

/** Output (x, y) reads input (x, y + r·x), about the centre. */
export function shearY(img: Uint8Array, shape: ImageShape, r: number, fill = MID_GREY): Uint8Array {
  return affine(img, shape, { a: 1, b: 0, c: r, d: 1, tx: 0, ty: 0 }, fill);
}

/** Moves the content right by `fraction` of the width (negative: left). */
export function translateX(img: Uint8Array, shape: ImageShape, fraction: number, fill = MID_GREY): Uint8Array {
  return affine(img, shape, { a: 1, b: 0, c: 0, d: 1, tx: -fraction * shape.width, ty: 0 }, fill);
}

/** Moves the content down by `fraction` of the height (negative: up). */
export function translateY(img: Uint8Array, shape: ImageShape, fraction: number, fill = MID_GREY): Uint8Array {
  return affine(img, shape, { a: 1, b: 0, c: 0, d: 1, tx: 0, ty: -fraction * shape.height }, fill);
}

/** Sets rows [top, top+h) × columns [left, left+w), clipped to the image, to `fill` on every channel. */
export function fillRect(img: Uint8Array, shape: ImageShape, top: number, left: number, h: number, w: number, fill: number): Uint8Array {
  const out = img.slice();
  const { height: H, width: W, channels: c } = shape;
  const y0 = Math.max(0, top);
  const y1 = Math.min(H, top + h);
  const x0 = Math.max(0, left);
  const x1 = Math.min(W, left + w);
  const v = clampByte(fill);
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) for (let k = 0; k < c; k++) out[(y * W + x) * c + k] = v;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Float colour operations for the `color` augmentation: values in [0, 1], as TensorFlow's colour
// ops expect. Each clips its result to [0, 1] so the next one sees a valid colour.

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

export function adjustBrightnessF(img: Float32Array, shape: ImageShape, delta: number): void {
  const c = shape.channels;
  const cc = colourChannels(c);
  for (let p = 0; p < pixelCount(shape); p++) for (let k = 0; k < cc; k++) img[p * c + k] = clamp01(img[p * c + k] + delta);
}

/** Per colour channel: (x − mean)·factor + mean, as tf.image.adjust_contrast. */
export function adjustContrastF(img: Float32Array, shape: ImageShape, factor: number): void {
  const c = shape.channels;
  const cc = colourChannels(c);
  const n = pixelCount(shape);
  for (let k = 0; k < cc; k++) {
    let sum = 0;
    for (let p = 0; p < n; p++) sum += img[p * c + k];
    const mean = sum / n;
    for (let p = 0; p < n; p++) img[p * c + k] = clamp01((img[p * c + k] - mean) * factor + mean);
  }
}

/**
 * Hue shift (fraction of a turn) and saturation factor in HSV, as tf.image.adjust_hue and
 * adjust_saturation. Grey images have neither, so they are left alone.
 */
export function adjustHueSaturationF(img: Float32Array, shape: ImageShape, hueDelta: number, satFactor: number): void {
  const c = shape.channels;
  if (colourChannels(c) < 3) return;
  for (let p = 0; p < pixelCount(shape); p++) {
    const i = p * c;
    const r = img[i];
    const g = img[i + 1];
    const b = img[i + 2];
    const max = Math.max(r, g, b);
    const min = Math.min(r, g, b);
    const range = max - min;
    let hue = 0;
    if (range > 0) {
      if (max === r) hue = (g - b) / range;
      else if (max === g) hue = 2 + (b - r) / range;
      else hue = 4 + (r - g) / range;
      hue /= 6;
    }
    let s = max > 0 ? range / max : 0;
    hue = (((hue + hueDelta) % 1) + 1) % 1;
    s = clamp01(s * satFactor);
    const v = max;
    // back to RGB
    const h6 = hue * 6;
    const sector = Math.floor(h6) % 6;
    const f = h6 - Math.floor(h6);
    const pp = v * (1 - s);
    const q = v * (1 - s * f);
    const t = v * (1 - s * (1 - f));
    const rgb =
      sector === 0 ? [v, t, pp] : sector === 1 ? [q, v, pp] : sector === 2 ? [pp, v, t] : sector === 3 ? [pp, q, v] : sector === 4 ? [t, pp, v] : [v, pp, q];
    img[i] = rgb[0];
    img[i + 1] = rgb[1];
    img[i + 2] = rgb[2];
  }
}
