import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { nativeBatchNormGrads, nativeBatchNormKernel } from './native-training';

/**
 * Training support for the tfjs wasm backend (4.22): kernels for 'wasm' that convolutional training
 * needs, and a batch-norm op with a cheap gradient for every backend.
 *
 * - Conv2DBackpropFilter is missing from wasm. Registered here as chunked im2col + XNNPACK matrix
 *   products.
 * - Conv2DBackpropInput is a scalar six-deep loop, 5-10x slower than the forward convolution.
 *   Replaced by XNNPACK convolutions of dy (sub-pixel phases for strides above 1).
 * - MaxPoolGrad sends the gradient of all-negative windows to the wrong element. Replaced.
 * - Sum and Mean transpose the whole input before reducing leading axes (per-channel statistics),
 *   Tile computes an index per element, Identity copies: each was a large share of a WRN training
 *   step (the stock batch-norm gradient tiles to full size; the engine clones every tensor it saves
 *   for the backward pass). Replaced where it matters, with the stock kernel for the rest.
 *
 * Heavy arithmetic goes to XNNPACK through the wasm `BatchMatMul` and `Conv2D` kernels; the data
 * movement around it is JS over the wasm heap, because the wasm `Transpose`, `StridedSlice` and
 * `Concat` kernels are unblocked index loops that cost more than the products they feed.
 *
 * Kernels rather than a `registerGradient` override of Conv2D: a gradient override is global, so it
 * would also change what tfjs-node and the CPU backend run, whereas a kernel registered for 'wasm'
 * changes nothing elsewhere and is what the stock Conv2D gradient already calls. Kernels receive
 * TensorInfos and call other wasm kernels directly (as tfjs's own kernels do), freeing their scratch
 * buffers with disposeData, so nothing goes through the engine or the tape. Dilated convolutions
 * never reach these kernels: tfjs-core's Conv2D gradient rejects dilations above 1 with its own
 * error.
 */

const WASM = 'wasm';
/** Marks configs registered here, so a second install (or a second copy of this module) is a no-op. */
const OWNER = Symbol.for('ssl.wasm-training');

type OwnedKernelConfig = tf.KernelConfig & { [OWNER]?: true };
type Pads = { top: number; bottom: number; left: number; right: number };

interface ConvGeometry {
  n: number;
  h: number;
  w: number;
  cin: number;
  oh: number;
  ow: number;
  cout: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  pad: Pads;
}

function isOwned(config: tf.KernelConfig | undefined): boolean {
  return config != null && (config as OwnedKernelConfig)[OWNER] === true;
}

function geometry(
  inShape: number[],
  filterShape: number[],
  strides: [number, number] | number,
  pad: tf.Conv2DBackpropFilterAttrs['pad'],
  dimRoundingMode: tf.Conv2DBackpropFilterAttrs['dimRoundingMode'],
): ConvGeometry {
  const info = tf.backend_util.computeConv2DInfo(
    inShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  return {
    n: info.batchSize,
    h: info.inHeight,
    w: info.inWidth,
    cin: info.inChannels,
    oh: info.outHeight,
    ow: info.outWidth,
    cout: info.outChannels,
    kh: info.filterHeight,
    kw: info.filterWidth,
    sh: info.strideHeight,
    sw: info.strideWidth,
    pad: { top: info.padInfo.top, bottom: info.padInfo.bottom, left: info.padInfo.left, right: info.padInfo.right },
  };
}

function f32(backend: BackendWasm, info: tf.TensorInfo): Float32Array {
  if (info.dtype !== 'float32') throw new Error(`wasm training kernels need float32 tensors, got ${info.dtype}`);
  return backend.typedArrayFromHeap(info) as Float32Array;
}

function runWasmKernel(
  name: string,
  backend: BackendWasm,
  inputs: tf.NamedTensorInfoMap,
  attrs: tf.NamedAttrMap,
): tf.TensorInfo {
  const kernel = tf.getKernel(name, WASM);
  if (kernel == null) throw new Error(`wasm kernel '${name}' is not registered; import @tensorflow/tfjs-backend-wasm first`);
  return kernel.kernelFunc({ inputs, backend, attrs }) as tf.TensorInfo;
}

/**
 * Float index of a view into the whole wasm heap. Division, not `>> 2`: a heap past 2 GiB has
 * byte offsets that a signed shift turns negative (and copyWithin then counts from the end).
 */
function heapIndex(v: Float32Array): number {
  return v.byteOffset / 4;
}

/** Same data under another shape, without touching the reference count: only for passing to a kernel. */
function view(info: tf.TensorInfo, shape: number[]): tf.TensorInfo {
  return { dataId: info.dataId, shape, dtype: info.dtype };
}

/** [rows, cols] -> [cols, rows], in 32x32 tiles so that neither side walks memory at a large stride. */
function transpose2d(src: Float32Array, rows: number, cols: number, dst: Float32Array): void {
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) {
        const ro = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[ro + c];
      }
    }
  }
}

/**
 * Transposed im2col of images b0 .. b0+n-1: row (i*kw + j)*cin + c (the HWIO order of the filter)
 * holds, for every output position m = (b*oh + oy)*ow + ox, the input value under filter tap (i, j)
 * in channel c, or 0 in the padding. The input comes as channel planes ([cin, g.n*h*w], at float
 * offset `xo` of `heap`), so rows are filled by block copies: for a stride-1 'same' layout a row is
 * its plane shifted by one offset, with the wrapped-around border rows and columns zeroed
 * afterwards; for other stride-1 layouts one copy per output row; strided layouts need an element
 * loop. `heap` is the whole wasm heap, so copyWithin runs as a native memmove (4x faster than an
 * element loop here).
 */
function im2colT(heap: Float32Array, xo: number, g: ConvGeometry, b0: number, n: number, co: number): void {
  const { h, w, cin, oh, ow, kh, kw, sh, sw } = g;
  const { top, left } = g.pad;
  const m = n * oh * ow;
  const plane = n * h * w;
  const planeStride = g.n * h * w;
  const sameShape = sh === 1 && sw === 1 && oh === h && ow === w;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const di = i - top;
      const dj = j - left;
      // Output columns whose tap lands inside the image; the rest read padding.
      const oxLo = Math.min(ow, Math.max(0, Math.ceil(-dj / sw)));
      const oxHi = Math.max(oxLo, Math.min(ow, Math.floor((w - 1 - dj) / sw) + 1));
      for (let c = 0; c < cin; c++) {
        const row = co + ((i * kw + j) * cin + c) * m;
        const base = xo + c * planeStride + b0 * h * w;
        if (sameShape) {
          const shift = di * w + dj;
          const lo = Math.max(0, -shift);
          const hi = Math.min(m, plane - shift);
          heap.fill(0, row, row + lo);
          heap.copyWithin(row + lo, base + lo + shift, base + hi + shift);
          heap.fill(0, row + hi, row + m);
          if (dj !== 0) {
            const first = dj < 0 ? 0 : w - dj;
            const count = Math.abs(dj);
            for (let q = 0; q < n * h; q++) heap.fill(0, row + q * w + first, row + q * w + first + count);
          }
          if (di !== 0) {
            const first = di < 0 ? 0 : h - di;
            const count = Math.abs(di);
            for (let b = 0; b < n; b++) heap.fill(0, row + (b * h + first) * w, row + (b * h + first + count) * w);
          }
          continue;
        }
        let d = row;
        for (let b = 0; b < n; b++) {
          for (let oy = 0; oy < oh; oy++) {
            const r = oy * sh + di;
            if (r < 0 || r >= h) {
              heap.fill(0, d, d + ow);
              d += ow;
              continue;
            }
            const src = base + (b * h + r) * w + dj;
            heap.fill(0, d, d + oxLo);
            if (sw === 1) {
              heap.copyWithin(d + oxLo, src + oxLo, src + oxHi);
            } else {
              for (let ox = oxLo; ox < oxHi; ox++) heap[d + ox] = heap[src + ox * sw];
            }
            heap.fill(0, d + oxHi, d + ow);
            d += ow;
          }
        }
      }
    }
  }
}

/**
 * Chunking of the filter gradient: im2col chunks of about `colsChunkFloats` floats (1 MiB), small
 * enough for the GEMM to re-read them from cache, but at least `minChunkPositions` output positions
 * deep, below which per-product overhead wins. Chosen by measurement over the WRN-28-2 and TE-CNN
 * layer shapes; exported so that tests can force many small chunks.
 */
export const wasmConvTuning = { colsChunkFloats: 1 << 18, minChunkPositions: 512 };

/**
 * dW[i,j,c,o] = sum over (n, oy, ox) of xpad[n, oy*sh+i, ox*sw+j, c] * dy[n, oy, ox, o], as
 * [kh*kw*cin, M] x [M, cout] matrix products. That orientation (no transposed operand) is the only
 * one the wasm BatchMatMul sends to XNNPACK; with transposeA it falls back to a scalar loop about
 * 15x slower. XNNPACK's fully-connected operator streams the whole reduction dimension M for every
 * output tile, so one product over all of M (65536 for a 64x32x32 batch) runs from memory; the
 * product is therefore split over whole images into chunks, whose im2col is written and consumed
 * while still in cache, and the partial results are summed (in double precision).
 */
const conv2DBackpropFilter: tf.KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (attrs.dataFormat != null && attrs.dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropFilter on wasm supports dataFormat 'NHWC' only, got '${attrs.dataFormat}'`);
  }
  const g = geometry(x.shape, attrs.filterShape, attrs.strides, attrs.pad, attrs.dimRoundingMode);
  const { n, h, w, cin, oh, ow, cout, kh, kw } = g;
  const k = kh * kw * cin;
  const positions = oh * ow;
  const byCache = Math.floor(wasmConvTuning.colsChunkFloats / (k * positions));
  const images = Math.max(1, Math.min(n, Math.max(Math.ceil(wasmConvTuning.minChunkPositions / positions), byCache)));

  // Channel planes [cin, n*h*w]; with one channel that is x itself.
  let xt: tf.TensorInfo = x;
  if (cin > 1) {
    xt = backend.makeOutput([cin, n * h * w], 'float32');
    transpose2d(f32(backend, x), n * h * w, cin, f32(backend, xt));
  }
  const cols = backend.makeOutput([k, images * positions], 'float32');
  const sum = new Float64Array(k * cout);
  for (let b0 = 0; b0 < n; b0 += images) {
    const nb = Math.min(images, n - b0);
    const mc = nb * positions;
    // XNNPACK caches the packed right-hand operand by tensor id, keyed without its shape, until
    // that tensor is freed: each chunk of dy is copied to a tensor of its own, freed right after.
    const dyChunk = backend.makeOutput([mc, cout], 'float32');
    // Views are taken after the last allocation: growing the wasm heap detaches earlier ones.
    const xtView = f32(backend, xt);
    const heap = new Float32Array(xtView.buffer);
    im2colT(heap, heapIndex(xtView), g, b0, nb, heapIndex(f32(backend, cols)));
    const from = heapIndex(f32(backend, dy)) + b0 * positions * cout;
    heap.copyWithin(heapIndex(f32(backend, dyChunk)), from, from + mc * cout);
    const part = runWasmKernel('BatchMatMul', backend, { a: view(cols, [k, mc]), b: dyChunk }, { transposeA: false, transposeB: false });
    backend.disposeData(dyChunk.dataId);
    const pv = f32(backend, part);
    for (let i = 0; i < sum.length; i++) sum[i] += pv[i];
    backend.disposeData(part.dataId);
  }
  backend.disposeData(cols.dataId);
  if (xt !== x) backend.disposeData(xt.dataId);
  const out = backend.makeOutput(attrs.filterShape.slice(), 'float32');
  f32(backend, out).set(sum);
  return out;
};

/**
 * Sub-filter for a stride-1 correlation that computes the input gradient: taps (a + sh*t, b + sw*v)
 * of the HWIO filter, flipped in space, with in/out channels swapped, as [th, tw, cout, cin].
 */
function flippedSubFilter(
  filter: Float32Array,
  g: ConvGeometry,
  a: number,
  b: number,
  th: number,
  tw: number,
  dst: Float32Array,
): void {
  const { kw, cin, cout, sh, sw } = g;
  let d = 0;
  for (let t = 0; t < th; t++) {
    const i = a + sh * (th - 1 - t);
    for (let v = 0; v < tw; v++) {
      const j = b + sw * (tw - 1 - v);
      const tap = (i * kw + j) * cin * cout;
      for (let o = 0; o < cout; o++) {
        for (let c = 0; c < cin; c++) dst[d++] = filter[tap + c * cout + o];
      }
    }
  }
}

function conv2dExplicit(backend: BackendWasm, x: tf.TensorInfo, filter: tf.TensorInfo, pads: Pads): tf.TensorInfo {
  return runWasmKernel(
    'Conv2D',
    backend,
    { x, filter },
    {
      strides: [1, 1],
      pad: [
        [0, 0],
        [pads.top, pads.bottom],
        [pads.left, pads.right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [1, 1],
    } as unknown as tf.NamedAttrMap,
  );
}

/**
 * dx as XNNPACK convolutions of dy. Stride 1: one correlation with the flipped, channel-swapped
 * filter. Stride s > 1: the s*s sub-pixel phases (input rows/cols congruent to a given offset
 * modulo s) each see only every s-th filter tap, so each phase is a stride-1 correlation with a
 * smaller sub-filter, and the phases are interleaved back. Total work equals the forward conv,
 * where zero-inserting dy would cost s*s times more. Returns null where the layout needs padding
 * wider than the kernel (left to the stock kernel).
 */
function conv2DBackpropInputFast(
  backend: BackendWasm,
  dy: tf.TensorInfo,
  filter: tf.TensorInfo,
  g: ConvGeometry,
): tf.TensorInfo | null {
  const { n, h, w, cin, oh, ow, cout, kh, kw, sh, sw } = g;
  const { top, left } = g.pad;
  if (top > kh - 1 || left > kw - 1 || g.pad.bottom > kh - 1 || g.pad.right > kw - 1) return null;

  if (sh === 1 && sw === 1) {
    const flipped = backend.makeOutput([kh, kw, cout, cin], 'float32');
    flippedSubFilter(f32(backend, filter), g, 0, 0, kh, kw, f32(backend, flipped));
    const dx = conv2dExplicit(backend, dy, flipped, {
      top: kh - 1 - top,
      bottom: h + top - oh,
      left: kw - 1 - left,
      right: w + left - ow,
    });
    backend.disposeData(flipped.dataId);
    return dx;
  }

  const dx = backend.makeOutput([n, h, w, cin], 'float32');
  let covered = true;
  for (let a = 0; a < sh; a++) {
    const th = a < kh ? Math.ceil((kh - a) / sh) : 0;
    // Padded row p = r + top belongs to phase a when p % sh == a; its phase row is u = (p - a) / sh.
    const uLo = Math.max(0, Math.ceil((top - a) / sh));
    const uHi = Math.ceil((top + h - a) / sh);
    for (let b = 0; b < sw; b++) {
      const tw = b < kw ? Math.ceil((kw - b) / sw) : 0;
      const vLo = Math.max(0, Math.ceil((left - b) / sw));
      const vHi = Math.ceil((left + w - b) / sw);
      if (uHi <= uLo || vHi <= vLo) continue;
      if (th === 0 || tw === 0) {
        covered = false;
        continue;
      }
      const sub = backend.makeOutput([th, tw, cout, cin], 'float32');
      flippedSubFilter(f32(backend, filter), g, a, b, th, tw, f32(backend, sub));
      // Phase row u = sum over t of dy[u - t] * filter[a + sh*t]: a correlation with th - 1 rows of
      // leading padding, computed for rows 0 .. max(oh, uHi) - 1.
      const rows = Math.max(oh, uHi);
      const colsN = Math.max(ow, vHi);
      const phase = conv2dExplicit(backend, dy, sub, {
        top: th - 1,
        bottom: rows - oh,
        left: tw - 1,
        right: colsN - ow,
      });
      backend.disposeData(sub.dataId);
      const src = f32(backend, phase);
      const dst = f32(backend, dx);
      for (let bi = 0; bi < n; bi++) {
        for (let u = uLo; u < uHi; u++) {
          const r = a + sh * u - top;
          for (let v = vLo; v < vHi; v++) {
            const col = b + sw * v - left;
            const so = ((bi * rows + u) * colsN + v) * cin;
            const d = ((bi * h + r) * w + col) * cin;
            for (let c = 0; c < cin; c++) dst[d + c] = src[so + c];
          }
        }
      }
      backend.disposeData(phase.dataId);
    }
  }
  if (!covered) {
    // Phases that no filter tap reaches (kernel smaller than the stride) get zero gradient.
    const dst = f32(backend, dx);
    for (let a = 0; a < sh; a++) {
      for (let b = 0; b < sw; b++) {
        if ((a < kh ? Math.ceil((kh - a) / sh) : 0) > 0 && (b < kw ? Math.ceil((kw - b) / sw) : 0) > 0) continue;
        for (let bi = 0; bi < n; bi++) {
          for (let r = 0; r < h; r++) {
            if ((r + top) % sh !== a) continue;
            for (let col = 0; col < w; col++) {
              if ((col + left) % sw !== b) continue;
              dst.fill(0, ((bi * h + r) * w + col) * cin, ((bi * h + r) * w + col + 1) * cin);
            }
          }
        }
      }
    }
  }
  return dx;
}

function makeConv2DBackpropInput(fallback: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if ((attrs.dataFormat == null || attrs.dataFormat === 'NHWC') && dy.dtype === 'float32' && filter.dtype === 'float32') {
      const g = geometry(attrs.inputShape, filter.shape, attrs.strides, attrs.pad, attrs.dimRoundingMode);
      const dx = conv2DBackpropInputFast(backend, dy, filter, g);
      if (dx != null) return dx;
    }
    return fallback.kernelFunc(args);
  };
}

/**
 * The stock wasm MaxPoolGrad seeds its running maximum with FLT_MIN (the smallest positive float),
 * so in any window whose values are all below it the gradient goes to the window's first tap
 * instead of its maximum, and it breaks ties towards the last maximum. This one follows the CPU
 * backend and TensorFlow: the first maximum in row-major window order takes the whole gradient.
 * It finds that element by equality with the forward output (which is one of the window's values)
 * rather than by a running argmax, whose unpredictable branches made it twice as slow.
 */
const maxPoolGrad: tf.KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { dy, input, output } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo; output: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: c, outHeight: oh, outWidth: ow } = info;
  const { strideHeight: sh, strideWidth: sw, effectiveFilterHeight: fh, effectiveFilterWidth: fw } = info;
  const { top, left } = info.padInfo;
  const dx = backend.makeOutput(input.shape, 'float32');
  const x = f32(backend, input);
  const y = f32(backend, output);
  const g = f32(backend, dy);
  const out = f32(backend, dx);
  out.fill(0);
  const taps = new Int32Array(fh * fw);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const r0 = Math.max(0, oy * sh - top);
      const r1 = Math.min(h, oy * sh - top + fh);
      for (let ox = 0; ox < ow; ox++) {
        const c0 = Math.max(0, ox * sw - left);
        const c1 = Math.min(w, ox * sw - left + fw);
        let k = 0;
        for (let r = r0; r < r1; r++) {
          for (let col = c0; col < c1; col++) taps[k++] = ((b * h + r) * w + col) * c;
        }
        const go = ((b * oh + oy) * ow + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          const m = y[go + ch];
          // An all -Infinity (or NaN) window has no maximum to pass the gradient to.
          if (!(m > -Infinity)) continue;
          for (let q = 0; q < k; q++) {
            const idx = taps[q] + ch;
            if (x[idx] === m) {
              out[idx] += g[go + ch];
              break;
            }
          }
        }
      }
    }
  }
  return dx;
};

/**
 * Sum and Mean over a block of consecutive axes that excludes the innermost one (per-channel
 * statistics of NHWC: batch norm, bias gradients, global average pooling). The stock wasm kernels
 * first transpose the whole input so that the reduced axes come last, with an unblocked 4-D
 * transpose that costs several times the reduction; this accumulates in place instead, in double
 * precision as the CPU backend does. Other cases go to the stock kernel.
 */
function makeLeadingReduction(fallback: tf.KernelConfig, isMean: boolean): tf.KernelFunc {
  return (args) => {
    const backend = args.backend as BackendWasm;
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const axes = [...new Set(tf.util.parseAxisParam(axis, x.shape))].sort((a, b) => a - b);
    const rank = x.shape.length;
    const contiguous = axes.length > 0 && axes.every((a, i) => a === axes[0] + i);
    const size = tf.util.sizeFromShape(x.shape);
    if (x.dtype !== 'float32' || !contiguous || axes[axes.length - 1] === rank - 1 || size === 0) {
      return fallback.kernelFunc(args);
    }
    const outer = tf.util.sizeFromShape(x.shape.slice(0, axes[0]));
    const reduce = tf.util.sizeFromShape(x.shape.slice(axes[0], axes[axes.length - 1] + 1));
    const inner = tf.util.sizeFromShape(x.shape.slice(axes[axes.length - 1] + 1));
    const kept = x.shape.filter((_, i) => !axes.includes(i));
    const outShape = keepDims ? tf.backend_util.expandShapeToKeepDim(kept, axes) : kept;
    const out = backend.makeOutput(outShape, 'float32');
    const src = f32(backend, x);
    const dst = f32(backend, out);
    const acc = new Float64Array(inner);
    const scale = isMean ? 1 / reduce : 1;
    const i2 = 2 * inner;
    const i4 = 4 * inner;
    for (let o = 0; o < outer; o++) {
      acc.fill(0);
      let r = 0;
      // Eight rows per pass over the accumulator: a third of the time of one row per pass.
      for (; r + 8 <= reduce; r += 8) {
        const base = (o * reduce + r) * inner;
        for (let i = 0; i < inner; i++) {
          const j = base + i;
          acc[i] +=
            src[j] + src[j + inner] + (src[j + i2] + src[j + i2 + inner]) + (src[j + i4] + src[j + i4 + inner] + (src[j + i4 + i2] + src[j + i4 + i2 + inner]));
        }
      }
      for (; r < reduce; r++) {
        const base = (o * reduce + r) * inner;
        for (let i = 0; i < inner; i++) acc[i] += src[base + i];
      }
      for (let i = 0; i < inner; i++) dst[o * inner + i] = acc[i] * scale;
    }
    return out;
  };
}

/**
 * Tile by block copies: x goes to the first tile of every axis, then, innermost axis first, each
 * filled block is copied along its axis. The stock FusedBatchNorm gradient tiles the per-channel
 * rsqrt(variance) to the full activation shape, and the stock wasm Tile (an index computation per
 * element) made that the most expensive kernel of a WRN training step.
 */
const tile: tf.KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { x } = args.inputs as { x: tf.TensorInfo };
  const { reps } = args.attrs as unknown as tf.TileAttrs;
  const shape = x.shape;
  const rank = shape.length;
  const outShape = shape.map((d, i) => d * reps[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  if (tf.util.sizeFromShape(outShape) === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  if (rank === 0) {
    dst.set(src);
    return out;
  }
  // stride[d]: elements per step of axis d in the output.
  const stride = new Array<number>(rank);
  for (let d = rank - 1, acc = 1; d >= 0; d--) {
    stride[d] = acc;
    acc *= outShape[d];
  }
  const rowLen = shape[rank - 1];
  // Visits every index of the axes before `upTo`, within x's extent, with its output offset.
  const forEachPrefix = (upTo: number, visit: (offset: number) => void): void => {
    const idx = new Array<number>(upTo).fill(0);
    const count = tf.util.sizeFromShape(shape.slice(0, upTo));
    for (let p = 0; p < count; p++) {
      let offset = 0;
      for (let k = 0; k < upTo; k++) offset += idx[k] * stride[k];
      visit(offset);
      for (let k = upTo - 1; k >= 0; k--) {
        if (++idx[k] < shape[k]) break;
        idx[k] = 0;
      }
    }
  };
  let row = 0;
  forEachPrefix(rank - 1, (offset) => {
    dst.set(src.subarray(row * rowLen, (row + 1) * rowLen), offset);
    row++;
  });
  for (let d = rank - 1; d >= 0; d--) {
    if (reps[d] === 1) continue;
    const block = shape[d] * stride[d];
    forEachPrefix(d, (offset) => {
      for (let r = 1; r < reps[d]; r++) dst.copyWithin(offset + r * block, offset, offset + block);
    });
  }
  return out;
};

/**
 * The stock wasm Identity copies its input. The engine clones every tensor it saves for the
 * backward pass through Identity, so a WRN training step made a few hundred full-size copies.
 * Tensors are immutable and the backend counts references, so sharing the buffer is what the CPU
 * backend's Identity does too.
 */
const identity: tf.KernelFunc = ({ inputs, backend }) => {
  const { x } = inputs as { x: tf.TensorInfo };
  (backend as BackendWasm).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
};

/**
 * Slices that are one contiguous run of the input (any slice of a 1-D tensor; pieces along the
 * first axis), copied straight from the wasm heap. The stock kernel first copies the whole input
 * out of the heap (readSync) for every slice, so cutting the flat parameter vector of WRN-28-2
 * into its 100-odd tensors (src/train/flat.ts) copied it 100 times: 350 ms a training step.
 */
function contiguousCopy(backend: BackendWasm, x: tf.TensorInfo, begin: number, shape: number[]): tf.TensorInfo {
  const out = backend.makeOutput(shape, x.dtype);
  const size = tf.util.sizeFromShape(shape);
  const from = backend.typedArrayFromHeap(x) as Float32Array | Int32Array;
  (backend.typedArrayFromHeap(out) as Float32Array | Int32Array).set(from.subarray(begin, begin + size));
  return out;
}

const COPYABLE = new Set(['float32', 'int32', 'bool']);

function makeSlice(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, sz] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    if (!COPYABLE.has(x.dtype) || !tf.slice_util.isSliceContinous(x.shape, b, sz)) return stock.kernelFunc(args);
    return contiguousCopy(args.backend as BackendWasm, x, tf.slice_util.computeFlatOffset(b, tf.util.computeStrides(x.shape)), sz);
  };
}

function makeSplitV(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    // pieces are contiguous when every axis before the split one has length 1
    if (!COPYABLE.has(x.dtype) || x.shape.slice(0, ax).some((d) => d !== 1)) return stock.kernelFunc(args);
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
    const inner = tf.util.sizeFromShape(x.shape.slice(ax + 1));
    let offset = 0;
    return sizes.map((n) => {
      const shape = x.shape.slice();
      shape[ax] = n;
      const out = contiguousCopy(args.backend as BackendWasm, x, offset, shape);
      offset += n * inner;
      return out;
    });
  };
}

function registerOwned(config: tf.KernelConfig): void {
  const current = tf.getKernel(config.kernelName, WASM);
  if (isOwned(current)) return;
  if (current != null) tf.unregisterKernel(config.kernelName, WASM);
  const owned: OwnedKernelConfig = { ...config };
  owned[OWNER] = true;
  tf.registerKernel(owned);
}

/** Replaces a stock wasm kernel, keeping it reachable for the cases the replacement leaves to it. */
function replaceWithFallback(kernelName: string, make: (stock: tf.KernelConfig) => tf.KernelFunc): void {
  const stock = tf.getKernel(kernelName, WASM);
  if (stock == null || isOwned(stock)) return;
  registerOwned({
    kernelName,
    backendName: WASM,
    // The stock kernel binds its wasm function in setupFunc, which the backend runs at init.
    setupFunc: stock.setupFunc,
    kernelFunc: make(stock),
  });
}

let installed = false;

/**
 * Registers the wasm kernels that convolutional training needs (idempotent). Loads the wasm
 * backend package if nothing has yet, so that its stock kernels exist before these replace one of
 * them; it does not select the backend.
 */
export function installWasmTrainingKernels(): void {
  if (installed) return;
  // Loaded lazily so that importing this module never registers (and so prefers) the wasm backend.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('@tensorflow/tfjs-backend-wasm');

  registerOwned({ kernelName: tf.Conv2DBackpropFilter, backendName: WASM, kernelFunc: conv2DBackpropFilter });
  replaceWithFallback(tf.MaxPoolGrad, () => maxPoolGrad);
  replaceWithFallback(tf.Conv2DBackpropInput, makeConv2DBackpropInput);
  replaceWithFallback(tf.Sum, (stock) => makeLeadingReduction(stock, false));
  replaceWithFallback(tf.Mean, (stock) => makeLeadingReduction(stock, true));
  replaceWithFallback(tf.Identity, () => identity);
  replaceWithFallback(tf.Slice, makeSlice);
  replaceWithFallback(tf.SplitV, makeSplitV);
  replaceWithFallback(tf.Tile, (stock) => (a) => ((a.inputs.x as tf.TensorInfo).dtype === 'string' ? stock.kernelFunc(a) : tile(a)));
  installed = true;
}

// ---------------------------------------------------------------------------------------------
// Batch norm in training mode as one op with a closed-form gradient.

/** Kernel name of the training-mode batch norm op; its gradient is registered below. */
export const BATCH_NORM_TRAINING = 'SslBatchNormTraining';

export interface BatchNormTrainingResult {
  /** (x - mean) / sqrt(variance + epsilon) * scale + offset */
  y: tf.Tensor4D;
  /** Per-channel batch mean over N, H, W. */
  mean: tf.Tensor1D;
  /** Per-channel population variance over N, H, W (divided by N*H*W, as tf.moments). */
  variance: tf.Tensor1D;
}

const bnKernelFunc: tf.KernelFunc = ({ inputs, attrs }) => {
  const { x, scale, offset } = inputs as { x: tf.Tensor4D; scale: tf.Tensor1D; offset: tf.Tensor1D };
  const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
  // Runs as ops on whatever backend is active; the engine keeps the tape off inside a kernel.
  return tf.tidy(() => {
    const mean = tf.mean(x, [0, 1, 2]);
    const variance = tf.mean(tf.squaredDifference(x, mean), [0, 1, 2]);
    const y = tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, offset, scale, eps);
    return [y, mean, variance];
  }) as unknown as tf.TensorInfo[];
};

/**
 * The total derivative through the batch statistics, in closed form. With xm = x - mean,
 * r = 1/sqrt(var + eps), g = scale*r and R = N*H*W:
 *   dx = g*dy - g/R*sum(dy) - g*r^2/R*sum(dy*xm)*xm   (+ dmean/R + 2*dvar/R*xm when the statistics
 *                                                      themselves are differentiated)
 *   dscale = r*sum(dy*xm), doffset = sum(dy).
 * Per element that is one product and two reductions plus an affine combination, where the stock
 * tape (moments -> FusedBatchNorm) tiles rsqrt to the full input, forms several full-size products
 * per output and back-propagates Mean/Square/Sub separately.
 */
const bnGradConfig: tf.GradConfig = {
  kernelName: BATCH_NORM_TRAINING,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const [dy, dmean, dvar] = dys as tf.Tensor[];
    const [x, scale, mean, variance] = saved;
    const eps = (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
    const native = nativeBatchNormGrads({ dy, dmean, dvar }, { x, scale, mean, variance }, eps);
    if (native) return { x: () => native.dx, scale: () => native.dscale, offset: () => native.doffset };
    const count = x.size / mean.size;
    const parts = tf.tidy(() => {
      const xm = tf.sub(x, mean);
      const sumDy = tf.sum(dy, [0, 1, 2]);
      const sumDyXm = tf.sum(tf.mul(dy, xm), [0, 1, 2]);
      const r = tf.rsqrt(tf.add(variance, eps));
      const gain = tf.mul(scale, r);
      const coefXm = tf.add(tf.mul(tf.mul(tf.mul(gain, tf.square(r)), sumDyXm), -1 / count), tf.mul(dvar, 2 / count));
      const bias = tf.add(tf.mul(tf.mul(gain, sumDy), -1 / count), tf.div(dmean, count));
      const dx = tf.add(tf.add(tf.mul(dy, gain), tf.mul(xm, coefXm)), bias);
      return { dx, dscale: tf.mul(r, sumDyXm), doffset: sumDy };
    });
    return { x: () => parts.dx, scale: () => parts.dscale, offset: () => parts.doffset };
  },
};

const bnBackends = new Set<string>();

function ensureBatchNormKernel(backendName: string): void {
  if (bnBackends.has(backendName)) return;
  if (tf.getKernel(BATCH_NORM_TRAINING, backendName) == null) {
    const kernelFunc = nativeBatchNormKernel(backendName, bnKernelFunc) ?? bnKernelFunc;
    tf.registerKernel({ kernelName: BATCH_NORM_TRAINING, backendName, kernelFunc });
  }
  if (tf.getGradient(BATCH_NORM_TRAINING) == null) tf.registerGradient(bnGradConfig);
  bnBackends.add(backendName);
}

/**
 * Training-mode batch norm over N, H, W of an NHWC tensor: same values and gradients as
 * `tf.moments(x, [0, 1, 2])` followed by `tf.batchNorm4d`, with a cheaper backward pass. All
 * three outputs are differentiable. Works on any backend.
 */
export function batchNormTraining(
  x: tf.Tensor4D,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  varianceEpsilon: number,
): BatchNormTrainingResult {
  ensureBatchNormKernel(tf.getBackend());
  const [y, mean, variance] = tf.engine().runKernel(
    BATCH_NORM_TRAINING,
    { x, scale, offset } as unknown as tf.NamedTensorMap,
    { varianceEpsilon } as unknown as tf.NamedAttrMap,
  ) as tf.Tensor[];
  return { y: y as tf.Tensor4D, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
