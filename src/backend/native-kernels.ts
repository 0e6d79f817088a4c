import * as tf from '@tensorflow/tfjs';

/**
 * Single TensorFlow ops where tfjs composes many, on the native CPU backend ('tensorflow',
 * tfjs-node). Each eager op through the binding costs 30-55 us before any work, and tfjs's
 * composed gradients make several full passes over the activations:
 *
 * - LeakyRelu gradient: tfjs runs Greater, Multiply and Select; TensorFlow's LeakyReluGrad is one
 *   pass (5x faster on a WRN-28-2 activation).
 * - Relu gradient: tfjs runs Step, Cast and Multiply, and tfjs-node's Step alone is six ops (IsNan,
 *   Greater, Fill, Select...); TensorFlow's ReluGrad is one pass (10x faster).
 * - MaxPool gradient: TensorFlow's stock MaxPoolGrad (which tfjs-node calls) is 5-8x slower than
 *   oneDNN's. oneDNN's needs the forward pass's workspace (where each maximum was), which tfjs does
 *   not keep, so the forward is redone with it: both together take a fifth of the stock gradient.
 *   The forward MaxPool kernel goes through oneDNN too (up to 1.5x faster, identical values).
 * - Softmax cross-entropy: one SoftmaxCrossEntropyWithLogits op, where tf.losses runs about twenty
 *   (softmaxCrossEntropy below; callers opt in).
 * - Cast to the same dtype, which tfjs's gradients do all the time: shares the buffer instead of a
 *   TensorFlow Cast op.
 *
 * tfjs's gradient registry is global, so each gradient here wraps the stock one and takes the
 * native op only while the active backend is TensorFlow on the CPU (and the inputs fit); every
 * other backend, and anything that does not fit, runs the stock gradient unchanged. The new kernels
 * are registered for 'tensorflow' only, under ssl's own names, so they never collide with
 * tfjs-node's kernels whichever loads first. The two tfjs-node kernels replaced (MaxPool, Cast)
 * keep the stock kernel for what they leave to it.
 *
 * Values and gradients equal the stock ones (up to float rounding) except where x is NaN: ReluGrad
 * passes 0 there where tfjs passes NaN (a NaN activation has made the loss NaN already).
 */

export const NATIVE = 'tensorflow';

/** Kernel names of the native gradients (registered for 'tensorflow' only). */
export const LEAKY_RELU_GRAD = 'SslLeakyReluGrad';
export const RELU_GRAD = 'SslReluGrad';
export const MAX_POOL_GRAD = 'SslMaxPoolGrad';
/** Kernel name of the one-op softmax cross-entropy (outputs: loss per row, its gradient w.r.t. the logits). */
export const SOFTMAX_CROSS_ENTROPY = 'SslSoftmaxCrossEntropy';

export interface OpAttr {
  name: string;
  type: number;
  value: boolean | number | string | number[];
}

export interface NativeBinding {
  TF_ATTR_TYPE: number;
  TF_ATTR_FLOAT: number;
  TF_ATTR_STRING: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_INT: number;
  TF_FLOAT: number;
  TF_INT32: number;
}

/** The members of tfjs-node's NodeJSKernelBackend that ssl uses (nothing here imports tfjs-node). */
export interface NativeBackend {
  binding: NativeBinding;
  isUsingGpuDevice?: boolean;
  executeSingleOutput(name: string, opAttrs: OpAttr[], inputs: tf.TensorInfo[]): tf.Tensor;
  executeMultipleOutputs(name: string, opAttrs: OpAttr[], inputs: tf.TensorInfo[], numOutputs: number): tf.Tensor[];
}

export function isNativeCpu(backend: unknown): backend is NativeBackend {
  const b = backend as Partial<NativeBackend> | undefined;
  return b != null && b.binding != null && typeof b.executeMultipleOutputs === 'function' && b.isUsingGpuDevice !== true;
}

function floatType(b: NativeBinding): OpAttr {
  return { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT };
}

let enabled = true;

/**
 * Turns this module's gradients and kernels on or off (on by default); off, every backend runs
 * tfjs's and tfjs-node's stock ones. For A/B measurements, and for tests that compare against the
 * stock path on the same backend. Returns the previous setting.
 */
export function setNativeKernels(on: boolean): boolean {
  const before = enabled;
  enabled = on;
  return before;
}

/** Whether this module's kernels are on (setNativeKernels). */
export function nativeKernelsOn(): boolean {
  return enabled;
}

/** The active backend, where it is TensorFlow on the CPU and this module's kernels are on. */
function activeNativeCpu(): NativeBackend | undefined {
  if (!enabled || tf.getBackend() !== NATIVE) return undefined;
  const b = tf.engine().backend as unknown;
  return isNativeCpu(b) ? b : undefined;
}

function isFloat32(...ts: tf.TensorInfo[]): boolean {
  return ts.every((t) => t.dtype === 'float32');
}

function run(kernelName: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}): tf.Tensor {
  return tf.engine().runKernel(kernelName, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
}

function runMulti(kernelName: string, inputs: Record<string, tf.Tensor>): tf.Tensor[] {
  return tf.engine().runKernel(kernelName, inputs as unknown as tf.NamedTensorMap, {}) as tf.Tensor[];
}

// ---------------------------------------------------------------------------------------------
// Activation gradients.

const leakyReluGradKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as unknown as NativeBackend;
  const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  const alpha = (attrs as unknown as { alpha: number }).alpha;
  return b.executeSingleOutput('LeakyReluGrad', [floatType(b.binding), { name: 'alpha', type: b.binding.TF_ATTR_FLOAT, value: alpha }], [dy, x]);
};

const reluGradKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const b = backend as unknown as NativeBackend;
  const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  return b.executeSingleOutput('ReluGrad', [floatType(b.binding)], [dy, x]);
};

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy in one op.

const softmaxCrossEntropyKernel: tf.KernelFunc = ({ inputs, backend }) => {
  const b = backend as unknown as NativeBackend;
  const { labels, logits } = inputs as { labels: tf.TensorInfo; logits: tf.TensorInfo };
  // loss per row, and its gradient w.r.t. the logits (softmax - labels)
  return b.executeMultipleOutputs('SoftmaxCrossEntropyWithLogits', [floatType(b.binding)], [logits, labels], 2);
};

/**
 * d loss_i / d logits_ij = softmax_ij - labels_ij: the op's second output, kept from the forward
 * pass. For the labels, tfjs's stock gradient is labels_ij - softmax_ij (not -log softmax_ij, the
 * true derivative); it is kept, so that every backend trains alike. ssl's algorithms pass targets
 * with no gradient anyway (the tape prunes inputs that do not lead to the variables).
 */
const softmaxCrossEntropyGrad: tf.GradConfig = {
  kernelName: SOFTMAX_CROSS_ENTROPY,
  outputsToSave: [false, true],
  gradFunc: (dys, saved) => {
    const [dloss] = dys as tf.Tensor[];
    const [backprop] = saved;
    const perRow = tf.expandDims(dloss, 1);
    return {
      logits: () => tf.mul(backprop, perRow),
      labels: () => tf.mul(backprop, tf.neg(perRow)),
    };
  },
};

/**
 * Softmax cross-entropy of each row, -sum_c labels_c * log softmax(logits)_c (labels may be soft),
 * with the gradients of `tf.losses.softmaxCrossEntropy(labels, logits, undefined, undefined,
 * tf.Reduction.NONE)`, which it replaces. On TensorFlow on the CPU it is one op
 * (SoftmaxCrossEntropyWithLogits) forward and one product backward, where tfjs runs about twenty
 * small ops; elsewhere it is that stock function.
 */
export function softmaxCrossEntropy(labels: tf.Tensor2D, logits: tf.Tensor2D): tf.Tensor1D {
  const fits = activeNativeCpu() && logits.rank === 2 && tf.util.arraysEqual(labels.shape, logits.shape) && isFloat32(labels, logits) && logits.size > 0;
  if (!fits) return tf.losses.softmaxCrossEntropy(labels, logits, undefined, undefined, tf.Reduction.NONE) as tf.Tensor1D;
  if (tf.getKernel(SOFTMAX_CROSS_ENTROPY, NATIVE) == null) installNativeGradients();
  const [loss, backprop] = runMulti(SOFTMAX_CROSS_ENTROPY, { labels, logits });
  backprop.dispose();
  return loss as tf.Tensor1D;
}

// ---------------------------------------------------------------------------------------------
// Max pooling through oneDNN.

interface PoolGeometry {
  ksize: [number, number];
  strides: [number, number];
  padding: 'SAME' | 'VALID';
}

function mklPoolAttrs(b: NativeBinding, g: PoolGeometry, workspace = true): OpAttr[] {
  return [
    floatType(b),
    { name: 'ksize', type: b.TF_ATTR_INT, value: [1, g.ksize[0], g.ksize[1], 1] },
    { name: 'strides', type: b.TF_ATTR_INT, value: [1, g.strides[0], g.strides[1], 1] },
    { name: 'padding', type: b.TF_ATTR_STRING, value: g.padding },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'workspace_enabled', type: b.TF_ATTR_BOOL, value: workspace },
    // oneDNN's kernels for the plain-layout ops carry this label; eager execution must name it
    { name: '_kernel', type: b.TF_ATTR_STRING, value: 'MklNameChangeOp' },
  ];
}

const maxPoolGradKernel: tf.KernelFunc = ({ inputs, backend, attrs }) => {
  const b = backend as unknown as NativeBackend;
  const { dy, x } = inputs as { dy: tf.TensorInfo; x: tf.TensorInfo };
  const opAttrs = mklPoolAttrs(b.binding, attrs as unknown as PoolGeometry);
  const [y, workspace] = b.executeMultipleOutputs('_MklNativeMaxPool', opAttrs, [x], 2);
  try {
    return b.executeSingleOutput('_MklNativeMaxPoolGrad', opAttrs, [x, y, dy, workspace]);
  } finally {
    tf.dispose([y, workspace]);
  }
};

let mklPoolWorks: boolean | undefined;

/**
 * Whether this TensorFlow has oneDNN's max-pool kernels and they work as called here (x86 builds
 * have them; other builds may not). Asked once, on a tiny input with a known answer.
 */
function mklMaxPoolWorks(b: NativeBackend): boolean {
  if (mklPoolWorks !== undefined) return mklPoolWorks;
  mklPoolWorks = tf.tidy(() => {
    try {
      const x = tf.tensor4d([1, 5, -2, 3, 0, 7, 4, -1, 2], [1, 3, 3, 1]);
      const g: PoolGeometry = { ksize: [2, 2], strides: [1, 1], padding: 'VALID' };
      const [y, workspace] = b.executeMultipleOutputs('_MklNativeMaxPool', mklPoolAttrs(b.binding, g), [x], 2);
      const dx = b.executeSingleOutput('_MklNativeMaxPoolGrad', mklPoolAttrs(b.binding, g), [x, y, tf.ones([1, 2, 2, 1]), workspace]);
      // window maxima 5, 7, 4, 7: the gradient lands once on 5 and on 4, twice on 7
      return tf.util.arraysEqual(Array.from(y.dataSync()), [5, 7, 4, 7]) && tf.util.arraysEqual(Array.from(dx.dataSync()), [0, 1, 0, 0, 0, 2, 1, 0, 0]);
    } catch {
      return false;
    }
  });
  return mklPoolWorks;
}

/** The pooling geometry where oneDNN takes the case as it is (4-D float32, 'same' or 'valid' padding), else null. */
function poolGeometry(x: tf.TensorInfo, attrs: tf.NamedAttrMap): PoolGeometry | null {
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  if (x.shape.length !== 4 || (pad !== 'same' && pad !== 'valid') || tf.util.sizeFromShape(x.shape) === 0) return null;
  const info = tf.backend_util.computePool2DInfo(x.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  if (info.outHeight <= 0 || info.outWidth <= 0) return null;
  return { ksize: [info.filterHeight, info.filterWidth], strides: [info.strideHeight, info.strideWidth], padding: pad === 'same' ? 'SAME' : 'VALID' };
}

/** The forward max pool through oneDNN, faster than TensorFlow's stock kernel; the same values (a maximum is exact). */
function makeMaxPool(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const b = args.backend as unknown;
    const x = args.inputs.x as tf.TensorInfo;
    const g = enabled && isNativeCpu(b) && x.dtype === 'float32' ? poolGeometry(x, args.attrs ?? {}) : null;
    if (!g || !mklMaxPoolWorks(b as NativeBackend)) return stock.kernelFunc(args);
    const [y, workspace] = (b as NativeBackend).executeMultipleOutputs('_MklNativeMaxPool', mklPoolAttrs((b as NativeBackend).binding, g, false), [x], 2);
    workspace.dispose();
    return y;
  };
}

/**
 * tfjs's gradients cast float32 tensors to float32 all the time (Multiply, RealDiv, Square, Sqrt...),
 * and tfjs-node runs each as a TensorFlow Cast op. A cast to the same dtype shares the buffer, as
 * tfjs-node's Identity does.
 */
function makeCast(stock: tf.KernelConfig): tf.KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const b = args.backend as unknown as { incRef(dataId: tf.DataId): void };
    if (!enabled || x.dtype !== (args.attrs as unknown as { dtype: string }).dtype || typeof b.incRef !== 'function') return stock.kernelFunc(args);
    b.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

// ---------------------------------------------------------------------------------------------
// Registration.

const OWNER = Symbol.for('ssl.native-kernels');
type OwnedGradConfig = tf.GradConfig & { [OWNER]?: true };

/** The native gradient of `x` given dy, the saved tensors and the attributes, or null for the stock one. */
type NativeGrad = (b: NativeBackend, dy: tf.Tensor, saved: tf.Tensor[], attrs: tf.NamedAttrMap) => (() => tf.Tensor) | null;

function wrapGradient(kernelName: string, native: NativeGrad): void {
  const stock = tf.getGradient(kernelName) as OwnedGradConfig | undefined;
  if (stock == null || stock[OWNER] === true) return;
  const wrapped: OwnedGradConfig = {
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const b = activeNativeCpu();
      const dx = b && !Array.isArray(dy) ? native(b, dy, saved, attrs) : null;
      return dx ? { x: dx } : stock.gradFunc(dy, saved, attrs);
    },
  };
  wrapped[OWNER] = true;
  tf.registerGradient(wrapped);
}

function registerNative(kernelName: string, kernelFunc: tf.KernelFunc): void {
  if (tf.getKernel(kernelName, NATIVE) == null) tf.registerKernel({ kernelName, backendName: NATIVE, kernelFunc });
}

type OwnedKernelConfig = tf.KernelConfig & { [OWNER]?: true };

/** Replaces one of tfjs-node's kernels, keeping it for the cases the replacement leaves to it. */
function replaceNativeKernel(kernelName: string, make: (stock: tf.KernelConfig) => tf.KernelFunc): void {
  const stock = tf.getKernel(kernelName, NATIVE) as OwnedKernelConfig | undefined;
  if (stock == null || stock[OWNER] === true) return;
  tf.unregisterKernel(kernelName, NATIVE);
  const owned: OwnedKernelConfig = { ...stock, kernelFunc: make(stock) };
  owned[OWNER] = true;
  tf.registerKernel(owned);
}

/**
 * Everything of this module: the native gradients (installNativeGradients) and, once tfjs-node has
 * registered its kernels (after loadNativeBackend), the replacements of its MaxPool and Cast
 * kernels. Idempotent; before tfjs-node loads it installs only the gradients.
 */
export function installNativeKernels(): void {
  installNativeGradients();
  replaceNativeKernel(tf.MaxPool, makeMaxPool);
  replaceNativeKernel(tf.Cast, makeCast);
}

/** The tfjs-node kernels that installNativeKernels has replaced (for reports such as `ssl env`). */
export function replacedNativeKernels(): string[] {
  return tf
    .getKernelsForBackend(NATIVE)
    .filter((k) => (k as OwnedKernelConfig)[OWNER] === true)
    .map((k) => k.kernelName)
    .sort();
}

/**
 * Registers the new kernels for 'tensorflow' and wraps the stock gradients of LeakyRelu, Relu and
 * MaxPool (idempotent). Needs nothing loaded: the kernels are reached only while TensorFlow on the
 * CPU is the active backend.
 */
export function installNativeGradients(): void {
  registerNative(LEAKY_RELU_GRAD, leakyReluGradKernel);
  registerNative(RELU_GRAD, reluGradKernel);
  registerNative(MAX_POOL_GRAD, maxPoolGradKernel);
  registerNative(SOFTMAX_CROSS_ENTROPY, softmaxCrossEntropyKernel);
  if (tf.getGradient(SOFTMAX_CROSS_ENTROPY) == null) tf.registerGradient(softmaxCrossEntropyGrad);
  wrapGradient(tf.LeakyRelu, (_b, dy, [x], attrs) =>
    isFloat32(dy, x) ? () => run(LEAKY_RELU_GRAD, { dy, x }, { alpha: (attrs as unknown as { alpha: number }).alpha }) : null,
  );
  wrapGradient(tf.Relu, (_b, dy, [x]) => (isFloat32(dy, x) ? () => run(RELU_GRAD, { dy, x }) : null));
  wrapGradient(tf.MaxPool, (b, dy, [x], attrs) => {
    const g = isFloat32(dy, x) ? poolGeometry(x, attrs) : null;
    return g && mklMaxPoolWorks(b) ? () => run(MAX_POOL_GRAD, { dy, x }, g as unknown as Record<string, unknown>) : null;
  });
}
