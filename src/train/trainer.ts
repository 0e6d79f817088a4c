import * as fs from 'fs';
import * as path from 'path';
import type * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { RandomState, type RandomStateSnapshot } from '../random';
import type { Algorithm, HParamValue, SampleState } from '../algorithms/types';
import { getAugmentation } from '../data/augment';
import { buildModel } from '../models';
import type { Model } from '../models/layers';
import { checkpointName, listCheckpoints, loadCheckpoint, pruneCheckpoints, restoreHost, saveCheckpoint, type Checkpoint, type HostTensor } from './checkpoint';
import type { TrainingData } from './dataset';
import { EventWriter } from './events';
import { assignValues } from './flat';
import { feederSeed, feederStateFromCheckpoint, InputFeeder, statefulParts, updateFromProbe, type FeederState } from './feeder';
import { evaluate } from './metrics';
import { makeOptimizer, type LrDecay, type Optimizer, type OptimizerKind } from './optimizer';
import { acquireLock } from '../util/lock';
import { augmentationName, prepareRunDir, runArgs, runDirFor } from './run-dir';
import { makeForward, trainStep, type StepSettings, type WdMode } from './step';
import { WeightStore } from './weights';

export { runDirFor, runKwargs } from './run-dir';

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
  optimizer: OptimizerKind;
  momentum: number;
  lrDecay: LrDecay;
  wdMode: WdMode;
  /** --nan-policy: stop at a non-finite loss (default) or skip that step */
  nanPolicy?: 'stop' | 'skip';
  /** Augmentation name; undefined = the dataset family's default. */
  augment?: string;
  seed: number;
  evalBatch: number;
  /** Class names in label order (--class-mapping): per-class test accuracy is logged under them. */
  classNames?: string[];
  /** Augmentation worker threads (--augment-workers; 0 = on the training thread; default feeder.ts defaultAugmentWorkers()). */
  augmentWorkers?: number;
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
  /** The last step's loss scalars, by tag. */
  losses: Record<string, number>;
  /** Validation loss, precision/recall/F1, ood_examples, per-class accuracy, by tag. */
  metrics: Record<string, number>;
}

export interface TrainResult {
  runDir: string;
  reports: Report[];
  imagesSeen: number;
  resumedFrom: number;
  stopped: boolean;
}

const TAGS = {
  google: { train: 'accuracy/train_labeled', valid: 'accuracy/valid', test: 'accuracy' },
  realmix: { train: 'accuracy_train_labeled', valid: 'accuracy_valid', test: 'accuracy_test' },
};

/** Non-tensor state of a checkpoint, enough to continue exactly where it stopped. */
interface CheckpointMeta {
  algo: string;
  dataset: string;
  rng: RandomStateSnapshot;
  labeled: FeederState['labeled'];
  unlabeled: FeederState['unlabeled'];
  /** The feeder's generator; absent from checkpoints of versions that drew batches from `rng`. */
  feederRng?: FeederState['feederRng'];
  /** Per batch drawn but not yet trained on, the augmentation states it was requested with. */
  pendingAugmentation?: FeederState['pendingAugmentation'];
  optimizer?: OptimizerKind;
  /** Updates the optimiser has made (Adam's bias correction depends on it). */
  optimizerStep?: number;
  /** Written by earlier versions, which only had Adam. */
  adamT?: number;
  /** The learnt state of each stateful augmentation (CTAugment), in the order the loop lists them. */
  augmentation?: unknown[];
}

function newSampleState(algo: Algorithm, cfg: TrainConfig, data: TrainingData): SampleState | undefined {
  if (!algo.sampleStateWidth) return undefined;
  const width = algo.sampleStateWidth(data.nclass, cfg.hp);
  return { width, labeled: new Float32Array(data.labeled.count * width), unlabeled: new Float32Array((data.unlabeled?.count ?? 0) * width) };
}

/**
 * The one training loop every algorithm shares: batching and augmentation, the optimiser step,
 * batch-norm statistics, EMA, weight decay, per-sample state and adaptive augmentation,
 * evaluation every report_kimg, TensorBoard events and metrics.jsonl, checkpoints every save_kimg
 * (resuming from the newest one), progress.
 */
export async function train(cfg: TrainConfig, data: TrainingData, hooks: TrainHooks = {}): Promise<TrainResult> {
  const log = hooks.log ?? (() => undefined);
  const algo = cfg.algorithm;
  const views = algo.views(cfg.hp);
  const strongSpec = algo.strong?.(cfg.hp);
  const uratio = algo.uratio?.(cfg.hp) ?? 1;
  if ((views > 0 || (strongSpec?.views ?? 0) > 0) && !data.unlabeled) {
    throw new UserError(`--algo ${algo.name} needs unlabelled data; use a split dataset name <name>.<seed>@<labelled>-<valid>`);
  }
  const weakName = augmentationName(cfg, data);
  const augment = getAugmentation(weakName);
  // a strong view is the weak augmentation followed by the strong one, as FixMatch's pipeline applies them
  const strong = strongSpec && strongSpec.views > 0 ? { augmentation: getAugmentation(`${weakName}+${strongSpec.augmentation}`), views: strongSpec.views } : undefined;
  const stateful = [...statefulParts(augment), ...(strong ? statefulParts(strong.augmentation) : [])];
  const model: Model = buildModel({
    arch: cfg.arch,
    nclass: data.nclass,
    inputShape: [data.shape.height, data.shape.width, data.shape.channels],
    filters: cfg.filters,
    scales: cfg.scales,
    repeat: cfg.repeat,
  });
  const runDir = runDirFor(cfg, data);
  // one process per run directory: a second `ssl train` of the same run (a shell loop started twice) stops here
  fs.mkdirSync(runDir, { recursive: true });
  const lock = acquireLock(runDir, 'training');
  try {
    const ckptDir = path.join(runDir, 'tf');
    prepareRunDir(runDir, runArgs(cfg, data, runDir));

    const rng = new RandomState(cfg.seed);
    const weights = new WeightStore(model, rng);
    const optimizer: Optimizer = makeOptimizer(cfg.optimizer, weights.paramCount(), cfg.lr, cfg.momentum);
    const feeder = new InputFeeder(data, augment, new RandomState(feederSeed(cfg.seed)), { views, uratio, strong, workers: cfg.augmentWorkers });
    const sampleState = newSampleState(algo, cfg, data);
    const totalImages = cfg.trainKimg * 1024;
    const reportNimg = cfg.reportKimg * 1024;
    const saveNimg = cfg.saveKimg * 1024;
    let imagesSeen = 0;
    let resumedFrom = 0;
    const reports: Report[] = [];

    const restore = (ck: Checkpoint, file: string) => {
      const meta = ck.header.meta as unknown as CheckpointMeta;
      if ((meta.optimizer ?? 'adam') !== optimizer.kind) {
        throw new UserError(`checkpoint ${file} was written with --optimizer ${meta.optimizer ?? 'adam'}, this run uses ${optimizer.kind}; use another --train-dir`);
      }
      weights.restore(ck, file);
      for (const [group, slot] of Object.entries(optimizer.slots())) assignValues(slot, weights.layout.readGroup(ck, group, file));
      optimizer.t = meta.optimizerStep ?? meta.adamT ?? 0;
      if (sampleState) {
        restoreHost(ck, 'sample/labeled', sampleState.labeled, file);
        restoreHost(ck, 'sample/unlabeled', sampleState.unlabeled, file);
      }
      if (stateful.length > 0) {
        const saved = meta.augmentation;
        if (!Array.isArray(saved) || saved.length !== stateful.length) {
          throw new UserError(`checkpoint ${file} has no state for augmentation ${stateful.map((a) => a.name).join(', ')}; use another --train-dir`);
        }
        stateful.forEach((a, i) => a.setState(saved[i]));
      }
      rng.setState(meta.rng);
      feeder.setState(feederStateFromCheckpoint(meta));
      imagesSeen = resumedFrom = ck.header.imagesSeen;
    };

    log(`Model ${path.basename(runDir)}: ${cfg.arch}, ${weights.paramCount().toLocaleString('en-US')} trainable parameters`);
    const latest = listCheckpoints(ckptDir).pop();
    if (latest) {
      try {
        restore(loadCheckpoint(latest.path), latest.path);
      } catch (e) {
        // a checkpoint that does not fit this run must not leave its variables registered
        weights.dispose();
        optimizer.dispose();
        throw e;
      }
      log(`Resuming from ${latest.path} (${imagesSeen >> 10} kimg)`);
    }

    const forwardWith = makeForward(model, weights, rng);
    const evalForward = forwardWith({ training: false, ema: true }, null);

    const metricsPath = path.join(runDir, 'metrics.jsonl');
    const events = new EventWriter(ckptDir);
    const tags = TAGS[algo.tagStyle];
    const lastLosses: Record<string, number> = {};

    const evaluateAndLog = async (): Promise<Report> => {
      const ev = await evaluate(data, evalForward, cfg.evalBatch, cfg.classNames);
      const r: Report = {
        kimg: imagesSeen / 1024,
        imagesSeen,
        wallTime: Date.now() / 1000,
        train: ev.train,
        valid: ev.valid,
        test: ev.test,
        losses: { ...lastLosses },
        metrics: ev.scalars,
      };
      const values: Record<string, number> = { [tags.train]: r.train, [tags.test]: r.test, ...r.losses, ...r.metrics };
      if (data.valid.count > 0) values[tags.valid] = r.valid;
      events.scalars(imagesSeen, values);
      events.flush();
      fs.appendFileSync(metricsPath, JSON.stringify(r) + '\n');
      reports.push(r);
      const f = (v: number) => (Number.isNaN(v) ? '  n/a' : v.toFixed(2));
      log(`kimg ${String(imagesSeen >> 10).padEnd(8)}  accuracy train/valid/test  ${f(r.train)}  ${f(r.valid)}  ${f(r.test)}`);
      if (algo.tagStyle === 'realmix' && ev.ood.length > 0) log(`ood  ${ev.ood.map((p) => p.toFixed(4)).join(' ')}`);
      return r;
    };

    const checkpoint = async () => {
      const groups: Record<string, Map<string, tf.Tensor | HostTensor>> = { ...(await weights.hostGroups()) };
      for (const [group, slot] of Object.entries(optimizer.slots())) groups[group] = weights.layout.hostGroup((await slot.data()) as Float32Array);
      if (sampleState) {
        const w = sampleState.width;
        groups.sample = new Map<string, HostTensor>([
          ['labeled', { shape: [sampleState.labeled.length / w, w], values: sampleState.labeled }],
          ['unlabeled', { shape: [sampleState.unlabeled.length / w, w], values: sampleState.unlabeled }],
        ]);
      }
      const meta: CheckpointMeta = {
        algo: algo.name,
        dataset: data.name,
        rng: rng.getState(),
        ...feeder.getState(),
        optimizer: optimizer.kind,
        optimizerStep: optimizer.t,
        ...(stateful.length > 0 ? { augmentation: stateful.map((a) => a.getState()) } : {}),
      };
      await saveCheckpoint(path.join(ckptDir, checkpointName(imagesSeen)), imagesSeen, groups, meta as unknown as Record<string, unknown>);
      pruneCheckpoints(ckptDir, cfg.keepCkpt);
    };

    const stepSettings: StepSettings = {
      algorithm: algo,
      hp: cfg.hp,
      lr: cfg.lr,
      wd: cfg.wd,
      ema: cfg.ema,
      batch: cfg.batch,
      nclass: data.nclass,
      totalImages,
      wdMode: cfg.wdMode,
      nanPolicy: cfg.nanPolicy,
      lrDecay: cfg.lrDecay,
      sampleState,
    };
    const started = Date.now();
    let stopped = false;
    let skippedSteps = 0;
    try {
      while (imagesSeen < totalImages) {
        // A step's awaits can all resolve as microtasks, which never let the event loop deliver a
        // signal: yield once per step so Ctrl-C (and Slurm's SIGTERM) reach shouldStop.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (hooks.shouldStop?.()) {
          stopped = true;
          break;
        }
        const { inputs, probe } = await feeder.next(cfg.batch);
        const { loss, scalars, skipped } = await trainStep(stepSettings, forwardWith, weights, optimizer, rng, inputs, imagesSeen);
        if (skipped) {
          skippedSteps++;
          log(`Skipped the step at ${imagesSeen} images (kimg ${imagesSeen >> 10}): loss ${loss}, or a gradient, is not finite (--nan-policy skip; ${skippedSteps} skipped so far)`);
        } else {
          if (probe) await updateFromProbe(probe, evalForward);
          Object.assign(lastLosses, scalars);
        }
        if (!skipped && !Number.isFinite(loss)) {
          throw new UserError(
            `loss became ${loss} at ${imagesSeen} images (kimg ${imagesSeen >> 10}); the last good checkpoint is kept in ${ckptDir}; lower --lr and re-run, or use --nan-policy skip`,
          );
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
      optimizer.dispose();
      await feeder.close();
    }
    return { runDir, reports, imagesSeen, resumedFrom, stopped };
  } finally {
    lock.release();
  }
}
