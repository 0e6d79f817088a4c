import * as tf from '@tensorflow/tfjs';

/**
 * Training support for the tfjs webgpu backend (4.22), as ./wasm-training is for wasm. Every
 * kernel ssl's models train with exists on webgpu; test/webgpu-training.test.ts checks each of
 * them against the CPU backend. Two get a replacement:
 *
 * - MaxPoolGrad: the stock kernel first records, per window, the position of the maximum with a
 *   `>=` scan, so where a window holds the maximum twice (equal zeros after a ReLU, saturated
 *   inputs) the gradient goes to its last occurrence. The CPU backend and TensorFlow send it to the
 *   first, in row-major window order. This kernel does that, in one pass over dx: each input
 *   element collects dy from the windows whose first maximum it is.
 * - Conv2DBackpropFilter: the stock kernel gives each filter element one GPU thread, which loops
 *   over every output position of the batch (65,536 for a WRN-28-2 batch at 32x32): a few thousand
 *   long serial loops, two thirds of a WRN training step on lavapipe. This one writes the
 *   transposed im2col of x and takes dW as batched matrix products of chunks of it with dy, summed
 *   over the chunks: the GPU's tiled matrix product, and a fixed summation order (tfjs's split-K
 *   product would accumulate with atomics, in no fixed order, and a resumed run would no longer end
 *   bit for bit where an uninterrupted one does).
 *
 * Kernels are registered for 'webgpu' only, so nothing changes on other backends; the stock
 * kernels stay reachable for inputs these leave to them.
 */

const WEBGPU = 'webgpu';
/** Marks configs registered here, so a second install (or a second copy of this module) is a no-op. */
const OWNER = Symbol.for('ssl.webgpu-training');

type OwnedKernelConfig = tf.KernelConfig & { [OWNER]?: true };

function isOwned(config: tf.KernelConfig | undefined): boolean {
  return config != null && (config as OwnedKernelConfig)[OWNER] === true;
}

/** A compute program in the form tfjs-backend-webgpu's runWebGPUProgram takes. */
interface WebGpuProgram {
  variableNames: string[];
  uniforms: string;
  workgroupSize: [number, number, number];
  size: boolean;
  outputShape: number[];
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  shaderKey: string;
  getUserCode(): string;
}

interface WebGpuBackendLike {
  runWebGPUProgram(program: WebGpuProgram, inputs: tf.TensorInfo[], dtype: tf.DataType, uniformData?: Array<{ type: 'int32' | 'float32' | 'uint32'; data: number[] }>): tf.TensorInfo;
  disposeData(dataId: object): boolean;
  device: { limits: { maxStorageBufferBindingSize: number } };
}

interface WebGpuUtil {
  computeDispatch(layout: { x: number[] }, outputShape: number[], workgroupSize: [number, number, number]): [number, number, number];
  flatDispatchLayout(shape: number[]): { x: number[] };
}

let utilModule: WebGpuUtil | undefined;

function webgpuUtil(): WebGpuUtil {
  if (!utilModule) {
    // Loaded lazily: importing this module must not load the backend package.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    utilModule = (require('@tensorflow/tfjs-backend-webgpu') as { webgpu_util: WebGpuUtil }).webgpu_util;
  }
  return utilModule;
}

/**
 * dx[b, r, c, d] = sum of dy[b, oy, ox, d] over the windows (oy, ox) that contain (r, c) and whose
 * first maximum (row-major) is at (r, c). Windows that are all -Infinity pass no gradient, as on
 * the CPU backend.
 */
function maxPoolGradProgram(outputShape: number[]): WebGpuProgram {
  const util = webgpuUtil();
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const dispatchLayout = util.flatDispatchLayout(outputShape);
  return {
    variableNames: ['dy', 'xIn', 'yOut'],
    uniforms: 'strides : vec2<i32>, pads : vec2<i32>, filterDims : vec2<i32>, outDims : vec2<i32>,',
    workgroupSize,
    size: true,
    outputShape,
    dispatchLayout,
    dispatch: util.computeDispatch(dispatchLayout, outputShape, workgroupSize),
    shaderKey: 'sslMaxPoolGradFirstMax',
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let coords = getCoordsFromIndex(index);
          let b = coords[0];
          let r = coords[1];
          let c = coords[2];
          let d = coords[3];
          let v = getXIn(b, r, c, d);
          let sh = uniforms.strides[0];
          let sw = uniforms.strides[1];
          let top = uniforms.pads[0];
          let left = uniforms.pads[1];
          let fh = uniforms.filterDims[0];
          let fw = uniforms.filterDims[1];
          let inH = uniforms.xInShape[1];
          let inW = uniforms.xInShape[2];
          // windows oy with oy*sh - top <= r < oy*sh - top + fh (likewise for columns)
          let oyLo = max(0, (r + top - fh + sh) / sh);
          let oyHi = min(uniforms.outDims[0] - 1, (r + top) / sh);
          let oxLo = max(0, (c + left - fw + sw) / sw);
          let oxHi = min(uniforms.outDims[1] - 1, (c + left) / sw);
          var total = 0.0;
          for (var oy = oyLo; oy <= oyHi; oy++) {
            let r0 = oy * sh - top;
            if (r < r0 || r >= r0 + fh) { continue; }
            for (var ox = oxLo; ox <= oxHi; ox++) {
              let c0 = ox * sw - left;
              if (c < c0 || c >= c0 + fw) { continue; }
              let m = getYOut(b, oy, ox, d);
              if (v != m || m == -uniforms.INFINITY) { continue; }
              // the first tap of the window holding m, in row-major order, takes the gradient
              var first = true;
              for (var i = max(r0, 0); i <= r && first; i++) {
                for (var j = max(c0, 0); j < min(c0 + fw, inW) && first; j++) {
                  if (i == r && j >= c) { break; }
                  if (getXIn(b, i, j, d) == m) { first = false; }
                }
              }
              if (first) { total = total + getDy(b, oy, ox, d); }
            }
          }
          setOutputAtIndex(index, total);
        }
      }
    `,
  };
}

/**
 * Rows r of one pass (images firstImage .. firstImage + n - 1, positions (oy, ox) in order) of the
 * transposed im2col, as [chunks, rows per chunk, K]: column k = (i*kw + j)*cin + c (the HWIO order
 * of the filter) holds x[b, oy*sh - top + i, ox*sw - left + j, c], or 0 in the padding.
 */
function im2colProgram(outputShape: [number, number, number]): WebGpuProgram {
  const util = webgpuUtil();
  const workgroupSize: [number, number, number] = [64, 1, 1];
  const dispatchLayout = util.flatDispatchLayout(outputShape);
  return {
    variableNames: ['xIn'],
    uniforms: 'strides : vec2<i32>, pads : vec2<i32>, filterDims : vec2<i32>, outDims : vec2<i32>, firstImage : i32,',
    workgroupSize,
    size: true,
    outputShape,
    dispatchLayout,
    dispatch: util.computeDispatch(dispatchLayout, outputShape, workgroupSize),
    shaderKey: 'sslIm2colRows',
    getUserCode: () => `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let coords = getCoordsFromIndex(index);
          let row = coords[0] * uniforms.outShape[1] + coords[1];
          let k = coords[2];
          let positions = uniforms.outDims[0] * uniforms.outDims[1];
          let b = uniforms.firstImage + row / positions;
          let p = row % positions;
          let cin = uniforms.xInShape[3];
          let tap = k / cin;
          let r = (p / uniforms.outDims[1]) * uniforms.strides[0] - uniforms.pads[0] + tap / uniforms.filterDims[1];
          let col = (p % uniforms.outDims[1]) * uniforms.strides[1] - uniforms.pads[1] + tap % uniforms.filterDims[1];
          var v = 0.0;
          if (r >= 0 && r < uniforms.xInShape[1] && col >= 0 && col < uniforms.xInShape[2]) {
            v = getXIn(b, r, col, k % cin);
          }
          setOutputAtIndex(index, v);
        }
      }
    `,
  };
}

/** Floats of im2col one pass may hold (64 MiB): passes over groups of images keep memory in bounds. */
export const webgpuConvTuning = { passFloats: 1 << 24, chunkRows: 2048 };

/** The largest divisor of n that is at most `most` (at least 1). */
function divisorAtMost(n: number, most: number): number {
  for (let d = Math.max(1, Math.min(n, Math.floor(most))); d > 1; d--) if (n % d === 0) return d;
  return 1;
}

function runKernel(name: string, backend: WebGpuBackendLike, inputs: tf.NamedTensorInfoMap, attrs: object): tf.TensorInfo {
  const kernel = tf.getKernel(name, WEBGPU);
  if (kernel == null) throw new Error(`webgpu kernel '${name}' is not registered`);
  return kernel.kernelFunc({ inputs, backend: backend as unknown as tf.KernelBackend, attrs: attrs as tf.NamedAttrMap }) as tf.TensorInfo;
}

/** tfjs-backend-webgpu's MatMulProgramType.MatMulPackedProgram: tiled, without atomics. */
const MATMUL_PACKED = 3;

function makeConv2DBackpropFilter(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if ((attrs.dataFormat != null && attrs.dataFormat !== 'NHWC') || x.dtype !== 'float32' || dy.dtype !== 'float32') return stock.kernelFunc(args);
    const backend = args.backend as unknown as WebGpuBackendLike;
    const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
    const { batchSize: n, outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw, inChannels: cin, outChannels: cout } = info;
    const k = kh * kw * cin;
    const positions = oh * ow;
    if (n === 0 || positions === 0) return stock.kernelFunc(args);
    const bindingFloats = Math.floor(backend.device.limits.maxStorageBufferBindingSize / 4);
    const perPass = divisorAtMost(n, Math.min(webgpuConvTuning.passFloats, bindingFloats) / (positions * k));
    if (perPass * positions * k > bindingFloats) return stock.kernelFunc(args); // one image's im2col is already too big
    const perChunk = divisorAtMost(perPass, Math.max(1, webgpuConvTuning.chunkRows / positions));
    const chunks = perPass / perChunk;
    const rows = perChunk * positions;
    const uniforms = (firstImage: number) => [
      { type: 'int32' as const, data: [info.strideHeight, info.strideWidth] },
      { type: 'int32' as const, data: [info.padInfo.top, info.padInfo.left] },
      { type: 'int32' as const, data: [kh, kw] },
      { type: 'int32' as const, data: [oh, ow] },
      { type: 'int32' as const, data: [firstImage] },
    ];
    const saved = tf.env().get('WEBGPU_MATMUL_PROGRAM_TYPE');
    tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', MATMUL_PACKED);
    let total: tf.TensorInfo | undefined;
    try {
      for (let b0 = 0; b0 < n; b0 += perPass) {
        const cols = backend.runWebGPUProgram(im2colProgram([chunks, rows, k]), [x], 'float32', uniforms(b0));
        const dyPass = perPass === n ? dy : runKernel('Slice', backend, { x: dy }, { begin: [b0, 0, 0, 0], size: [perPass, oh, ow, cout] });
        const dyChunks: tf.TensorInfo = { dataId: dyPass.dataId, shape: [chunks, rows, cout], dtype: 'float32' };
        const parts = runKernel('BatchMatMul', backend, { a: cols, b: dyChunks }, { transposeA: true, transposeB: false });
        backend.disposeData(cols.dataId);
        if (dyPass !== dy) backend.disposeData(dyPass.dataId);
        const sum = runKernel('Sum', backend, { x: parts }, { axis: [0], keepDims: false });
        backend.disposeData(parts.dataId);
        if (total === undefined) {
          total = sum;
        } else {
          const next = runKernel('Add', backend, { a: total, b: sum }, {});
          backend.disposeData(total.dataId);
          backend.disposeData(sum.dataId);
          total = next;
        }
      }
    } finally {
      tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', saved);
    }
    const out = runKernel('Reshape', backend, { x: total! }, { shape: attrs.filterShape });
    backend.disposeData(total!.dataId);
    return out;
  };
}

function makeMaxPoolGrad(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const { dy, input, output } = args.inputs as { dy: tf.TensorInfo; input: tf.TensorInfo; output: tf.TensorInfo };
    if (input.dtype !== 'float32' || dy.dtype !== 'float32' || input.shape.length !== 4) return stock.kernelFunc(args);
    const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
    const backend = args.backend as unknown as WebGpuBackendLike;
    return backend.runWebGPUProgram(maxPoolGradProgram(input.shape), [dy, input, output], 'float32', [
      { type: 'int32', data: [info.strideHeight, info.strideWidth] },
      { type: 'int32', data: [info.padInfo.top, info.padInfo.left] },
      { type: 'int32', data: [info.effectiveFilterHeight, info.effectiveFilterWidth] },
      { type: 'int32', data: [info.outHeight, info.outWidth] },
    ]);
  };
}

/** Replaces a stock webgpu kernel, keeping it reachable for the cases the replacement leaves to it. */
function replaceWithFallback(kernelName: string, make: (stock: tf.KernelConfig) => tf.KernelFunc): void {
  const stock = tf.getKernel(kernelName, WEBGPU);
  if (stock == null || isOwned(stock)) return;
  tf.unregisterKernel(kernelName, WEBGPU);
  const owned: OwnedKernelConfig = { kernelName, backendName: WEBGPU, setupFunc: stock.setupFunc, disposeFunc: stock.disposeFunc, kernelFunc: make(stock) };
  owned[OWNER] = true;
  tf.registerKernel(owned);
}

/**
 * Registers ssl's training kernels for 'webgpu' (idempotent). Call after
 * @tensorflow/tfjs-backend-webgpu has registered its own (./webgpu loads it); selects nothing.
 */
export function installWebGpuTrainingKernels(): void {
  webgpuUtil();
  replaceWithFallback(tf.MaxPoolGrad, makeMaxPoolGrad);
  replaceWithFallback(tf.Conv2DBackpropFilter, makeConv2DBackpropFilter);
}

/** The kernel names ssl registered for 'webgpu'. */
export function webGpuPolyfills(): string[] {
  return tf
    .getKernelsForBackend(WEBGPU)
    .filter((k) => isOwned(k))
    .map((k) => k.kernelName)
    .sort();
}
