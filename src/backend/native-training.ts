import * as tf from '@tensorflow/tfjs';
import { NATIVE, installNativeGradients, isNativeCpu, type NativeBackend, type NativeBinding, type OpAttr } from './native-kernels';

/**
 * Training-mode batch norm on the native backend ('tensorflow', tfjs-node) as TensorFlow's own
 * fused kernels: FusedBatchNormV3 for the forward pass and FusedBatchNormGradV3 for the gradient.
 * The stock tfjs path (moments + FusedBatchNorm) runs a dozen eager ops forward and more backward,
 * each a full pass over the activations; these two are one pass each, and cut a WRN-28-2 training
 * step by about 40%.
 *
 * Only for TensorFlow on the CPU: there FusedBatchNormV3's reserve spaces 1 and 2 are the batch
 * mean and the biased batch variance (the op's own `batch_variance` output is Bessel-corrected),
 * and reserve space 3 is empty, so the gradient can be rebuilt from the statistics that
 * SslBatchNormTraining already returns and saves, with no extra outputs to carry. cuDNN's reserve
 * space 2 is an inverse standard deviation instead, so on a GPU nothing here is registered and
 * the generic kernel of ./wasm-training runs.
 *
 * Nothing imports tfjs-node here: the backend object is reached through the kernel arguments (and
 * tf.findBackend), typed by the few members used (./native-kernels, which also holds the native
 * activation and max-pool gradients).
 */

/** Kernel name of the native gradient; the gradient of SslBatchNormTraining calls it where registered. */
export const BATCH_NORM_TRAINING_GRAD = 'SslBatchNormTrainingGrad';

// The other native gradients (activations, max pooling) are wrapped into tfjs's gradient registry
// as soon as anything can train: every backend selection imports this module (through
// ./wasm-training). They stay with the stock gradients except on TensorFlow on the CPU.
installNativeGradients();

function fusedAttrs(b: NativeBinding, epsilon: number): OpAttr[] {
  return [
    { name: 'T', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'U', type: b.TF_ATTR_TYPE, value: b.TF_FLOAT },
    { name: 'epsilon', type: b.TF_ATTR_FLOAT, value: epsilon },
    { name: 'data_format', type: b.TF_ATTR_STRING, value: 'NHWC' },
    { name: 'is_training', type: b.TF_ATTR_BOOL, value: true },
  ];
}

/** Shapes and dtypes the fused ops take as they are; anything else goes to the generic kernel. */
function fusedFits(x: tf.TensorInfo, ...perChannel: tf.TensorInfo[]): boolean {
  if (x.dtype !== 'float32' || x.shape.length !== 4 || tf.util.sizeFromShape(x.shape) === 0) return false;
  const c = x.shape[3];
  return perChannel.every((t) => t.dtype === 'float32' && t.shape.length === 1 && t.shape[0] === c);
}

function epsilonOf(attrs: tf.NamedAttrMap | undefined): number {
  return (attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
}

function makeForward(fallback: tf.KernelFunc): tf.KernelFunc {
  return (args) => {
    const { x, scale, offset } = args.inputs as { x: tf.TensorInfo; scale: tf.TensorInfo; offset: tf.TensorInfo };
    const backend = args.backend as unknown;
    if (!isNativeCpu(backend) || !fusedFits(x, scale, offset)) return fallback(args);
    const attrs = fusedAttrs(backend.binding, epsilonOf(args.attrs));
    // A factor of 1 lets the (empty) running statistics go unread: the moving averages are ssl's.
    attrs.push({ name: 'exponential_avg_factor', type: backend.binding.TF_ATTR_FLOAT, value: 1 });
    const empty = tf.tensor1d([], 'float32');
    const [y, batchMean, besselVariance, savedMean, savedVariance, workspace] = backend.executeMultipleOutputs(
      'FusedBatchNormV3',
      attrs,
      [x, scale, offset, empty, empty],
      6,
    );
    tf.dispose([empty, batchMean, besselVariance, workspace]);
    return [y, savedMean, savedVariance];
  };
}

const gradKernel: tf.KernelFunc = (args) => {
  const backend = args.backend as unknown as NativeBackend;
  const { dy, x, scale, mean, variance } = args.inputs as Record<string, tf.TensorInfo>;
  const empty = tf.tensor1d([], 'float32');
  const [dx, dscale, doffset, unused1, unused2] = backend.executeMultipleOutputs(
    'FusedBatchNormGradV3',
    fusedAttrs(backend.binding, epsilonOf(args.attrs)),
    [dy, x, scale, mean, variance, empty],
    5,
  );
  tf.dispose([empty, unused1, unused2]);
  return [dx, dscale, doffset];
};

/**
 * The forward kernel for `backendName` where it is a native CPU backend (registering the gradient
 * kernel with it), else undefined. `fallback` serves inputs the fused op does not take.
 */
export function nativeBatchNormKernel(backendName: string, fallback: tf.KernelFunc): tf.KernelFunc | undefined {
  if (backendName !== NATIVE || !isNativeCpu(tf.findBackend(NATIVE))) return undefined;
  if (tf.getKernel(BATCH_NORM_TRAINING_GRAD, NATIVE) == null) {
    tf.registerKernel({ kernelName: BATCH_NORM_TRAINING_GRAD, backendName: NATIVE, kernelFunc: gradKernel });
  }
  return makeForward(fallback);
}

function anyNonZero(t: tf.Tensor): boolean {
  return (t.dataSync() as Float32Array).some((v) => v !== 0);
}

/**
 * Gradients of SslBatchNormTraining w.r.t. x, scale and offset through FusedBatchNormGradV3, or
 * null where the active backend has no native gradient kernel (or the inputs do not fit it).
 * `mean` and `variance` are the kernel's saved outputs (biased variance). FusedBatchNormGradV3
 * covers y only; the terms for gradients reaching the statistics themselves are added on top, and
 * only when such gradients are nonzero: the engine passes zeros for unused outputs, and in ssl's
 * models only y is differentiated, so reading two per-channel vectors saves two full-size passes.
 */
export function nativeBatchNormGrads(
  dys: { dy: tf.Tensor; dmean: tf.Tensor; dvar: tf.Tensor },
  saved: { x: tf.Tensor; scale: tf.Tensor; mean: tf.Tensor; variance: tf.Tensor },
  varianceEpsilon: number,
): { dx: tf.Tensor; dscale: tf.Tensor; doffset: tf.Tensor } | null {
  const { x, scale, mean, variance } = saved;
  if (tf.getKernel(BATCH_NORM_TRAINING_GRAD, tf.getBackend()) == null) return null;
  if (!fusedFits(x, scale, mean, variance) || dys.dy.dtype !== 'float32') return null;
  const [dx, dscale, doffset] = tf
    .engine()
    .runKernel(BATCH_NORM_TRAINING_GRAD, { dy: dys.dy, x, scale, mean, variance } as unknown as tf.NamedTensorMap, {
      varianceEpsilon,
    } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  const useMean = anyNonZero(dys.dmean);
  const useVar = anyNonZero(dys.dvar);
  if (!useMean && !useVar) return { dx, dscale, doffset };
  const count = x.size / mean.size;
  const total = tf.tidy(() => {
    let d = dx;
    if (useVar) d = tf.add(d, tf.mul(tf.sub(x, mean), tf.mul(dys.dvar, 2 / count)));
    if (useMean) d = tf.add(d, tf.div(dys.dmean, count));
    return d;
  });
  dx.dispose();
  return { dx: total, dscale, doffset };
}
