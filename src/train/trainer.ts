import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { RandomState, type RandomStateSnapshot } from '../random';
import type { Algorithm, HParamValue, Inputs } from '../algorithms/types';
import { getAugmentation, defaultAugmentationFor } from '../data/augment';
import { buildModel, resolvedScales } from '../models';
import type { Model } from '../models/layers';
import { writeFileAtomic } from '../util/atomic-write';
import { Adam } from './adam';
import { Batcher, type BatcherState } from './batcher';
import { checkpointName, listCheckpoints, loadCheckpoint, pruneCheckpoints, restoreGroup, saveCheckpoint } from './checkpoint';
import { ImageSet, TrainingData, imageSize } from './dataset';
import { accuracy } from './evaluate';
import { EventWriter } from './events';
import { runName } from './run-name';
import { makeForward, trainStep, type StepSettings } from './step';
import { WeightStore } from './weights';

/** Everything one training run needs, already validated (the command builds it from flags). */
export interface TrainConfig {
  algorithm: Algorithm;
  /** Algorithm hyperparameters, complete (defaults filled in). */
  hp: Record<string, HParamValue>;
  trainDir: string;
  arch: string;
  filters: number;
  scales: number;
  repeat: number;
  lr: number;
  wd: number;
  ema: number;
  batch: number;
  trainKimg: number;
  reportKimg: number;
  saveKimg: number;
  keepCkpt: number;
  /** Augmentation name; undefined = the dataset family's default. */
  augment?: string;
  seed: number;
  evalBatch: number;
}

export interface TrainHooks {
  log?: (line: string) => void;
  /** Called after every step with the images seen and the step's loss. */
  onStep?: (imagesSeen: number, loss: number) => void;
  progress?: { update(done: number, extra?: Record<string, string | number>): void; stop(): void };
  /** Polled between steps: when it returns true the run checkpoints and stops (Ctrl-C). */
  shouldStop?: () => boolean;
}

export interface Report {
  kimg: number;
  imagesSeen: number;
  wallTime: number;
  train: number;
  valid: number;
  test: number;
  losses: Record<string, number>;
}

export interface TrainResult {
  runDir: string;
  reports: Report[];
  imagesSeen: number;
  resumedFrom: number;
  stopped: boolean;
}

export function runKwargs(cfg: TrainConfig, data: Pick<TrainingData, 'nclass' | 'shape'>) {
  const kw: Array<{ name: string; value: HParamValue; type: 'float' | 'int' | 'string' | 'bool' }> = [
    { name: 'arch', value: cfg.arch, type: 'string' },
    { name: 'batch', value: cfg.batch, type: 'int' },
    { name: 'ema', value: cfg.ema, type: 'float' },
    { name: 'lr', value: cfg.lr, type: 'float' },
    { name: 'nclass', value: data.nclass, type: 'int' },
    { name: 'wd', value: cfg.wd, type: 'float' },
  ];
  if (cfg.arch === 'resnet') {
    kw.push({ name: 'filters', value: cfg.filters, type: 'int' });
    kw.push({ name: 'repeat', value: cfg.repeat, type: 'int' });
    kw.push({ name: 'scales', value: resolvedScales({ scales: cfg.scales, inputShape: [data.shape.height, data.shape.width, data.shape.channels] }), type: 'int' });
  }
  for (const h of cfg.algorithm.hparams) if (h.inName !== false) kw.push({ name: h.name, value: cfg.hp[h.name], type: h.type });
  return kw;
}

export function runDirFor(cfg: TrainConfig, data: Pick<TrainingData, 'name' | 'nclass' | 'shape'>): string {
  return path.join(cfg.trainDir, data.name, runName(cfg.algorithm.className, runKwargs(cfg, data)));
}

function sortedJson(v: unknown, indent: number): string {
  const sortKeys = (x: unknown): unknown =>
    Array.isArray(x) ? x.map(sortKeys) : x && typeof x === 'object' ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sortKeys((x as Record<string, unknown>)[k])])) : x;
  return JSON.stringify(sortKeys(v), null, indent);
}

const TAGS = {
  google: { train: 'accuracy/train_labeled', valid: 'accuracy/valid', test: 'accuracy' },
  realmix: { train: 'accuracy_train_labeled', valid: 'accuracy_valid', test: 'accuracy_test' },
};

/** Builds the batch tensors for one step: augmented labelled images and the unlabelled views. */
class InputFeeder {
  private readonly size: number;
  readonly labeled: Batcher;
  readonly unlabeled: Batcher | null;

  constructor(
    private readonly data: TrainingData,
    private readonly augment: ReturnType<typeof getAugmentation>,
    private readonly rng: RandomState,
    private readonly views: number,
  ) {
    this.size = imageSize(data.shape);
    this.labeled = new Batcher(data.labeled.count, rng);
    this.unlabeled = views > 0 && data.unlabeled ? new Batcher(data.unlabeled.count, rng) : null;
  }

  private augmented(set: ImageSet, idx: Int32Array): tf.Tensor4D {
    const { height: h, width: w, channels: c } = this.data.shape;
    const buf = new Float32Array(idx.length * this.size);
    for (let i = 0; i < idx.length; i++) this.augment.apply(set.images, idx[i] * this.size, buf, i * this.size, this.data.shape, this.rng);
    return tf.tensor4d(buf, [idx.length, h, w, c]);
  }

  next(batch: number): Inputs {
    const li = this.labeled.next(batch);
    const labels = new Int32Array(batch);
    for (let i = 0; i < batch; i++) labels[i] = this.data.labeled.labels[li[i]];
    const x = this.augmented(this.data.labeled, li);
    const u: tf.Tensor4D[] = [];
    if (this.unlabeled && this.data.unlabeled) {
      const ui = this.unlabeled.next(batch);
      for (let v = 0; v < this.views; v++) u.push(this.augmented(this.data.unlabeled, ui));
    }
    return { x, labels: tf.tensor1d(labels, 'int32'), u };
  }
}

/**
 * The one training loop every algorithm shares: batching and augmentation, the optimiser step,
 * batch-norm statistics, EMA, decoupled weight decay, evaluation every report_kimg, TensorBoard
 * events and metrics.jsonl, checkpoints every save_kimg (resuming from the newest one), progress.
 */
export async function train(cfg: TrainConfig, data: TrainingData, hooks: TrainHooks = {}): Promise<TrainResult> {
  const log = hooks.log ?? (() => undefined);
  const algo = cfg.algorithm;
  const views = algo.views(cfg.hp);
  if (views > 0 && !data.unlabeled) throw new UserError(`--algo ${algo.name} needs unlabelled data; use a split dataset name <name>.<seed>@<labelled>-<valid>`);
  const augment = getAugmentation(cfg.augment ?? defaultAugmentationFor(data.base));
  const model: Model = buildModel({
    arch: cfg.arch,
    nclass: data.nclass,
    inputShape: [data.shape.height, data.shape.width, data.shape.channels],
    filters: cfg.filters,
    scales: cfg.scales,
    repeat: cfg.repeat,
  });
  const runDir = runDirFor(cfg, data);
  const ckptDir = path.join(runDir, 'tf');
  fs.mkdirSync(ckptDir, { recursive: true });

  const rng = new RandomState(cfg.seed);
  const weights = new WeightStore(model, rng);
  const adam = new Adam(weights.params, cfg.lr);
  const feeder = new InputFeeder(data, augment, rng, views);
  const totalImages = cfg.trainKimg * 1024;
  const reportNimg = cfg.reportKimg * 1024;
  const saveNimg = cfg.saveKimg * 1024;
  let imagesSeen = 0;
  let resumedFrom = 0;
  const reports: Report[] = [];

  const args = {
    algo: algo.name,
    dataset: data.name,
    model: path.basename(runDir),
    kwargs: Object.fromEntries(runKwargs(cfg, data).map((k) => [k.name, k.value])),
    hparams: cfg.hp,
    train_kimg: cfg.trainKimg,
    report_kimg: cfg.reportKimg,
    save_kimg: cfg.saveKimg,
    keep_ckpt: cfg.keepCkpt,
    augment: augment.name,
    seed: cfg.seed,
    arch: { arch: cfg.arch, filters: cfg.filters, scales: cfg.scales, repeat: cfg.repeat, nclass: data.nclass, image_shape: [data.shape.height, data.shape.width, data.shape.channels] },
  };
  const argsPath = path.join(runDir, 'args', 'args.json');
  if (fs.existsSync(argsPath)) {
    let prev: { algo?: string; dataset?: string; model?: string };
    try {
      prev = JSON.parse(fs.readFileSync(argsPath, 'utf8'));
    } catch {
      throw new UserError(`${argsPath} is unreadable; move the run directory away to start afresh`);
    }
    if (prev.algo !== args.algo || prev.dataset !== args.dataset || prev.model !== args.model) {
      throw new UserError(`${runDir} holds a run of ${prev.algo} on ${prev.dataset}, not ${args.algo} on ${args.dataset}; use another --train-dir`);
    }
  }
  writeFileAtomic(argsPath, sortedJson(args, 4) + '\n');

  const latest = listCheckpoints(ckptDir).pop();
  if (latest) {
    const ck = loadCheckpoint(latest.path);
    restoreGroup(ck, 'param', weights.params, latest.path);
    restoreGroup(ck, 'ema', weights.ema, latest.path);
    restoreGroup(ck, 'state', weights.state, latest.path);
    restoreGroup(ck, 'adam_m', adam.m, latest.path);
    restoreGroup(ck, 'adam_v', adam.v, latest.path);
    const meta = ck.header.meta as { adamT: number; rng: RandomStateSnapshot; labeled: BatcherState; unlabeled: BatcherState | null };
    adam.t = meta.adamT;
    rng.setState(meta.rng);
    feeder.labeled.setState(meta.labeled);
    if (feeder.unlabeled && meta.unlabeled) feeder.unlabeled.setState(meta.unlabeled);
    imagesSeen = resumedFrom = ck.header.imagesSeen;
    log(`Resuming from ${latest.path} (${imagesSeen >> 10} kimg)`);
  } else {
    log(`Model ${path.basename(runDir)}: ${weights.paramCount()} trainable parameters`);
  }

  const forwardWith = makeForward(model, weights, rng);
  const evalForward = forwardWith({ training: false, ema: true }, null);

  const metricsPath = path.join(runDir, 'metrics.jsonl');
  const events = new EventWriter(ckptDir);
  const tags = TAGS[algo.tagStyle];
  const lastLosses: Record<string, number> = {};

  const evaluateAndLog = async (): Promise<Report> => {
    const r: Report = {
      kimg: imagesSeen / 1024,
      imagesSeen,
      wallTime: Date.now() / 1000,
      train: await accuracy(data.labeled, evalForward, cfg.evalBatch),
      valid: await accuracy(data.valid, evalForward, cfg.evalBatch),
      test: await accuracy(data.test, evalForward, cfg.evalBatch),
      losses: { ...lastLosses },
    };
    const values: Record<string, number> = { [tags.train]: r.train, [tags.test]: r.test, ...r.losses };
    if (data.valid.count > 0) values[tags.valid] = r.valid;
    events.scalars(imagesSeen, values);
    events.flush();
    fs.appendFileSync(metricsPath, JSON.stringify(r) + '\n');
    reports.push(r);
    const f = (v: number) => (Number.isNaN(v) ? '  n/a' : v.toFixed(2));
    log(`kimg ${String(imagesSeen >> 10).padEnd(8)}  accuracy train/valid/test  ${f(r.train)}  ${f(r.valid)}  ${f(r.test)}`);
    return r;
  };

  const checkpoint = async () => {
    await saveCheckpoint(
      path.join(ckptDir, checkpointName(imagesSeen)),
      imagesSeen,
      { param: weights.params, ema: weights.ema, state: weights.state, adam_m: adam.m, adam_v: adam.v },
      { adamT: adam.t, rng: rng.getState(), labeled: feeder.labeled.getState(), unlabeled: feeder.unlabeled?.getState() ?? null, algo: algo.name, dataset: data.name },
    );
    pruneCheckpoints(ckptDir, cfg.keepCkpt);
  };

  const stepSettings: StepSettings = { algorithm: algo, hp: cfg.hp, lr: cfg.lr, wd: cfg.wd, ema: cfg.ema, batch: cfg.batch, nclass: data.nclass, totalImages };
  const started = Date.now();
  let stopped = false;
  try {
    while (imagesSeen < totalImages) {
      if (hooks.shouldStop?.()) {
        stopped = true;
        break;
      }
      const { loss, scalars } = await trainStep(stepSettings, forwardWith, weights, adam, rng, feeder.next(cfg.batch), imagesSeen);
      Object.assign(lastLosses, scalars);
      if (!Number.isFinite(loss)) {
        throw new UserError(`loss became ${loss} at ${imagesSeen} images (kimg ${imagesSeen >> 10}); the last good checkpoint is kept in ${ckptDir}; lower --lr and re-run`);
      }
      const prev = imagesSeen;
      imagesSeen += cfg.batch;
      hooks.onStep?.(imagesSeen, loss);
      const elapsed = (Date.now() - started) / 1000;
      const rate = (imagesSeen - resumedFrom) / Math.max(elapsed, 1e-3);
      hooks.progress?.update(Math.min(imagesSeen, totalImages) / 1024, { loss: loss.toFixed(4), imgs: rate.toFixed(0) });
      const crossed = (n: number) => n > 0 && Math.floor(prev / n) !== Math.floor(imagesSeen / n);
      const last = imagesSeen >= totalImages;
      if (crossed(reportNimg) || last) await evaluateAndLog();
      if (crossed(saveNimg) || last) await checkpoint();
    }
    if (stopped && imagesSeen > resumedFrom) await checkpoint();
  } finally {
    hooks.progress?.stop();
    events.close();
    weights.dispose();
    adam.dispose();
  }
  return { runDir, reports, imagesSeen, resumedFrom, stopped };
}
