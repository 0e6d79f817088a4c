import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { listImages, loadImageAs } from '../data/image-folder';
import { writeNpy } from '../data/npy';
import { buildModel } from '../models';
import { RandomState } from '../random';
import { listCheckpoints, loadCheckpoint } from './checkpoint';
import { argmax, predictProbabilities } from './evaluate';
import { makeForward } from './step';
import { WeightStore } from './weights';

export interface InferOptions {
  ckpt: string; // run directory or checkpoint file
  dir: string;
  out?: string; // predictions .npy path
  probs?: boolean; // also write probabilities
  batch?: number;
  /** Class names in label order, when the dataset has a mapping (custom datasets); default: the run's own, if it was trained with one. */
  classNames?: string[];
}

export interface InferResult {
  files: string[];
  predictions: number[];
  accuracy: number | null;
  labelled: number;
  predPath: string;
  probsPath?: string;
  checkpoint: string;
}

interface RunArgs {
  dataset: string;
  /** Written when the run was trained with --class-mapping. */
  class_names?: string[];
  arch: { arch: string; filters: number; scales: number; repeat: number; nclass: number; image_shape: [number, number, number] };
}

/** A run directory (its newest checkpoint) or a checkpoint file -> the checkpoint and the run's args. */
export function resolveCheckpoint(ckpt: string): { file: string; runDir: string; args: RunArgs } {
  let file = ckpt;
  let runDir: string;
  if (fs.existsSync(ckpt) && fs.statSync(ckpt).isDirectory()) {
    // the run directory itself, or its tf/ folder
    const hasTf = fs.existsSync(path.join(ckpt, 'tf'));
    const dir = hasTf ? path.join(ckpt, 'tf') : ckpt;
    const last = listCheckpoints(dir).pop();
    if (!last) throw new UserError(`no checkpoint (model.ckpt-*.sslckpt) in ${dir}; train first with ssl train`);
    file = last.path;
    runDir = hasTf ? path.resolve(ckpt) : path.dirname(path.resolve(ckpt));
  } else if (fs.existsSync(ckpt)) {
    runDir = path.dirname(path.dirname(path.resolve(ckpt)));
  } else {
    throw new UserError(`--ckpt ${ckpt} does not exist; give a run directory or a model.ckpt-*.sslckpt file`);
  }
  const argsPath = path.join(runDir, 'args', 'args.json');
  if (!fs.existsSync(argsPath)) throw new UserError(`${argsPath} is missing: --ckpt must be inside a run directory written by ssl train`);
  const args = JSON.parse(fs.readFileSync(argsPath, 'utf8')) as RunArgs;
  if (!args.arch?.image_shape) throw new UserError(`${argsPath} does not describe the network; re-train with this version of ssl`);
  return { file, runDir, args };
}

function labelOf(className: string | null, classNames?: string[]): number | null {
  if (className === null) return null;
  if (classNames) {
    const i = classNames.indexOf(className);
    return i >= 0 ? i : null;
  }
  return /^\d+$/.test(className) ? Number(className) : null;
}

/** Classifies every image of a folder with the EMA weights of a checkpoint. */
export async function inferFolder(o: InferOptions): Promise<InferResult> {
  const { file, args } = resolveCheckpoint(o.ckpt);
  const [h, w, c] = args.arch.image_shape;
  const model = buildModel({ arch: args.arch.arch, nclass: args.arch.nclass, inputShape: [h, w, c], filters: args.arch.filters, scales: args.arch.scales, repeat: args.arch.repeat });
  // the generator only fills the initial values the checkpoint then overwrites
  const rng = new RandomState(0);
  const weights = new WeightStore(model, rng);
  try {
    const ck = loadCheckpoint(file);
    weights.restore(ck, file, ['ema', 'state']);
    const images = listImages(o.dir);
    const size = h * w * c;
    const pixels = new Uint8Array(images.length * size);
    for (let i = 0; i < images.length; i++) pixels.set(await loadImageAs(path.join(o.dir, images[i].file), h, w, c), i * size);
    const forward = makeForward(model, weights, rng)({ training: false, ema: true }, null);
    const probs = await predictProbabilities({ images: pixels, count: images.length, shape: { height: h, width: w, channels: c } }, forward, o.batch ?? 256);
    const predictions = probs.map((p) => argmax(p));
    let correct = 0;
    let labelled = 0;
    images.forEach((im, i) => {
      const l = labelOf(im.className, o.classNames ?? args.class_names);
      if (l === null) return;
      labelled++;
      if (l === predictions[i]) correct++;
    });
    const predPath = path.resolve(o.out ?? `${args.dataset}_pred.npy`);
    writeNpy(predPath, BigInt64Array.from(predictions.map((p) => BigInt(p))), [predictions.length]);
    let probsPath: string | undefined;
    if (o.probs) {
      probsPath = predPath.replace(/_pred\.npy$|\.npy$/, '') + '_probs.npy';
      const flat = new Float32Array(probs.length * args.arch.nclass);
      probs.forEach((p, i) => flat.set(p, i * args.arch.nclass));
      writeNpy(probsPath, flat, [probs.length, args.arch.nclass]);
    }
    return { files: images.map((i) => i.file), predictions, accuracy: labelled > 0 ? (100 * correct) / labelled : null, labelled, predPath, probsPath, checkpoint: file };
  } finally {
    weights.dispose();
  }
}
