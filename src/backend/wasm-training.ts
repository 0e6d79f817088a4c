import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

/**
 * Training support for the tfjs wasm backend (4.22).
 *
 * The wasm backend ships no `Conv2DBackpropFilter` kernel, its `Conv2DBackpropInput` is a scalar
 * six-deep loop that runs 5-10x slower than the forward convolution, and its `MaxPoolGrad` routes
 * the gradient of all-negative windows to the wrong element. All three are registered here as
 * wasm kernels: the heavy arithmetic goes to XNNPACK (the wasm `BatchMatMul` fast path and
 * the wasm `Conv2D`), and the data movement around it (im2col, small filter reshuffles, sub-pixel
 * interleaving) is plain JS over the wasm heap, because the wasm `Transpose`, `StridedSlice` and
 * `Concat` kernels are unblocked index loops that cost more than the matrix product they feed.
 *
 * Kernels rather than a `registerGradient` override of Conv2D: a gradient override is global, so
 * it would also replace the native kernels of tfjs-node and the CPU backend, whereas a kernel
 * registered for 'wasm' changes nothing elsewhere and is what the stock Conv2D gradient already
 * calls.
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
  kernelName: string,
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
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) {
    throw new Error(`${kernelName} on wasm: dilations other than 1 are not supported`);
  }
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
 * Transposed im2col: row (i*kw + j)*cin + c (the HWIO order of the filter) holds, for every output
 * position m = (n*oh + oy)*ow + ox, the input value under filter tap (i, j) in channel c, or 0 in
 * the padding. `xt` is the input as [cin, n, h, w], so each row is filled from one channel plane
 * with unit-stride (or stride-sw) reads.
 */
function im2colT(xt: Float32Array, g: ConvGeometry, cols: Float32Array): void {
  const { n, h, w, cin, oh, ow, kh, kw, sh, sw } = g;
  const { top, left } = g.pad;
  const m = n * oh * ow;
  const plane = n * h * w;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      // Output columns whose tap (i, j) lands inside the image; the rest read padding.
      const oxLo = Math.min(ow, Math.max(0, Math.ceil((left - j) / sw)));
      const oxHi = Math.max(oxLo, Math.min(ow, Math.floor((w - 1 + left - j) / sw) + 1));
      for (let c = 0; c < cin; c++) {
        let d = ((i * kw + j) * cin + c) * m;
        const base = c * plane;
        for (let b = 0; b < n; b++) {
          for (let oy = 0; oy < oh; oy++) {
            const r = oy * sh + i - top;
            if (r < 0 || r >= h) {
              cols.fill(0, d, d + ow);
              d += ow;
              continue;
            }
            const s = base + (b * h + r) * w + j - left;
            for (let ox = 0; ox < oxLo; ox++) cols[d + ox] = 0;
            if (sw === 1) {
              for (let ox = oxLo; ox < oxHi; ox++) cols[d + ox] = xt[s + ox];
            } else {
              for (let ox = oxLo; ox < oxHi; ox++) cols[d + ox] = xt[s + ox * sw];
            }
            for (let ox = oxHi; ox < ow; ox++) cols[d + ox] = 0;
            d += ow;
          }
        }
      }
    }
  }
}

/**
 * dW[i,j,c,o] = sum over (n, oy, ox) of xpad[n, oy*sh+i, ox*sw+j, c] * dy[n, oy, ox, o]: one
 * [kh*kw*cin, M] x [M, cout] product. That orientation (no transposed operand) is the only one the
 * wasm BatchMatMul sends to XNNPACK; with transposeA it falls back to a scalar loop about 15x
 * slower.
 */
const conv2DBackpropFilter: tf.KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (attrs.dataFormat != null && attrs.dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropFilter on wasm supports dataFormat 'NHWC' only, got '${attrs.dataFormat}'`);
  }
  const g = geometry('Conv2DBackpropFilter', x.shape, attrs.filterShape, attrs.strides, attrs.pad, attrs.dimRoundingMode);
  const { n, h, w, cin, oh, ow, cout, kh, kw } = g;
  const m = n * oh * ow;
  const k = kh * kw * cin;

  const identityPatch =
    kh === 1 && kw === 1 && g.sh === 1 && g.sw === 1 && g.pad.top === 0 && g.pad.left === 0 && oh === h && ow === w;
  const temps: tf.TensorInfo[] = [];
  let cols: tf.TensorInfo;
  if (identityPatch && cin === 1) {
    cols = view(x, [k, m]);
  } else {
    // xt is [cin, n*h*w]; with one channel it is x itself.
    let xt: tf.TensorInfo = x;
    if (cin > 1) {
      xt = backend.makeOutput([cin, n * h * w], 'float32');
      temps.push(xt);
      transpose2d(f32(backend, x), n * h * w, cin, f32(backend, xt));
    }
    if (identityPatch) {
      cols = xt;
    } else {
      cols = backend.makeOutput([k, m], 'float32');
      temps.push(cols);
      // Views are taken after the last allocation: growing the wasm heap detaches earlier ones.
      im2colT(f32(backend, xt), g, f32(backend, cols));
    }
  }
  const out = runWasmKernel(
    'BatchMatMul',
    backend,
    { a: view(cols, [k, m]), b: view(dy, [m, cout]) },
    { transposeA: false, transposeB: false },
  );
  for (const t of temps) backend.disposeData(t.dataId);
  return { dataId: out.dataId, shape: attrs.filterShape.slice(), dtype: 'float32' };
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
      const g = geometry('Conv2DBackpropInput', attrs.inputShape, filter.shape, attrs.strides, attrs.pad, attrs.dimRoundingMode);
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
 * backend and TensorFlow: the first maximum in row-major window order takes the whole gradient
 * (NaN is never a maximum, an all-NaN window passes nothing).
 */
const maxPoolGrad: tf.KernelFunc = (args) => {
  const backend = args.backend as BackendWasm;
  const { dy, input } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
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
  const g = f32(backend, dy);
  const out = f32(backend, dx);
  out.fill(0);
  const best = new Float32Array(c);
  const where = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      const r0 = Math.max(0, oy * sh - top);
      const r1 = Math.min(h, oy * sh - top + fh);
      for (let ox = 0; ox < ow; ox++) {
        const c0 = Math.max(0, ox * sw - left);
        const c1 = Math.min(w, ox * sw - left + fw);
        best.fill(-Infinity);
        where.fill(-1);
        for (let r = r0; r < r1; r++) {
          for (let col = c0; col < c1; col++) {
            const base = ((b * h + r) * w + col) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch];
              if (v > best[ch]) {
                best[ch] = v;
                where[ch] = base + ch;
              }
            }
          }
        }
        const go = ((b * oh + oy) * ow + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          if (where[ch] >= 0) out[where[ch]] += g[go + ch];
        }
      }
    }
  }
  return dx;
};

function registerOwned(config: tf.KernelConfig): void {
  const current = tf.getKernel(config.kernelName, WASM);
  if (isOwned(current)) return;
  if (current != null) tf.unregisterKernel(config.kernelName, WASM);
  const owned: OwnedKernelConfig = { ...config };
  owned[OWNER] = true;
  tf.registerKernel(owned);
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
  registerOwned({ kernelName: tf.MaxPoolGrad, backendName: WASM, kernelFunc: maxPoolGrad });
  const stockInput = tf.getKernel(tf.Conv2DBackpropInput, WASM);
  if (stockInput != null && !isOwned(stockInput)) {
    registerOwned({
      kernelName: tf.Conv2DBackpropInput,
      backendName: WASM,
      // The fallback needs its cwrap'd function, which the backend binds through setupFunc at init.
      setupFunc: stockInput.setupFunc,
      kernelFunc: makeConv2DBackpropInput(stockInput),
    });
  }
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
    const variance = tf.mean(tf.square(tf.sub(x, mean)), [0, 1, 2]);
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
    tf.registerKernel({ kernelName: BATCH_NORM_TRAINING, backendName, kernelFunc: bnKernelFunc });
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
