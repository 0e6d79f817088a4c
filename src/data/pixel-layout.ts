/**
 * Reorders the pixel layouts the dataset files use into the interleaved H×W×C order that PNG
 * encoding (and TensorFlow's decode_image) use.
 */

/** CIFAR binary: one image as C planes of H rows of W values (C×H×W, row-major). */
export function chwToHwc(src: Uint8Array, offset: number, height: number, width: number, channels: number, out: Uint8Array): Uint8Array {
  const plane = height * width;
  for (let c = 0; c < channels; c++) {
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[i * channels + c] = src[base + i];
  }
  return out;
}

/**
 * Column-major images: value (row h, column w, channel c) at h + H·(w + W·c). SVHN's X (an H×W×C×N
 * MATLAB array) and STL-10's binary files (read by numpy as N×3×96×96 and transposed (0, 3, 2, 1))
 * both store each image this way.
 */
export function columnMajorToHwc(src: Uint8Array, offset: number, height: number, width: number, channels: number, out: Uint8Array): Uint8Array {
  for (let c = 0; c < channels; c++) {
    for (let w = 0; w < width; w++) {
      const col = offset + height * (w + width * c);
      for (let h = 0; h < height; h++) out[(h * width + w) * channels + c] = src[col + h];
    }
  }
  return out;
}

/**
 * Cuts a stream of pieces into images of `bytesPerImage` bytes (pieces need not align with
 * images) and calls `fn` with each image's bytes in order. Returns how many whole images there
 * were and how many bytes were left over after the last one.
 */
export async function forEachImage(
  pieces: AsyncIterable<Uint8Array>,
  bytesPerImage: number,
  fn: (src: Uint8Array, offset: number) => Promise<void>,
): Promise<{ count: number; leftover: number }> {
  const stage = new Uint8Array(bytesPerImage);
  let fill = 0;
  let count = 0;
  for await (const p of pieces) {
    let off = 0;
    while (off < p.length) {
      if (fill === 0 && p.length - off >= bytesPerImage) {
        await fn(p, off);
        count++;
        off += bytesPerImage;
        continue;
      }
      const take = Math.min(bytesPerImage - fill, p.length - off);
      stage.set(p.subarray(off, off + take), fill);
      fill += take;
      off += take;
      if (fill === bytesPerImage) {
        fill = 0;
        await fn(stage, 0);
        count++;
      }
    }
  }
  return { count, leftover: fill };
}
