import * as tf from '@tensorflow/tfjs';
import type { Inputs } from '../algorithms/types';
import { getAugmentation, isStateful, type Augmentation, type ImageShape, type StatefulAugmentation } from '../data/augment';
import { AugmentPool, drawSeeds } from '../data/augment-pool';
import { defaultWorkerCount } from '../data/augment-workers';
import type { CtaPolicy } from '../data/ctaugment';
import { RandomState, type RandomStateSnapshot, type Rng } from '../random';
import { concatArrays } from '../util/typed-arrays';
import { Batcher, type BatcherState } from './batcher';
import { imageSize, type ImageSet, type TrainingData } from './dataset';

/**
 * Augmentations that learn while the model trains (CTAugment): they keep state, which goes into
 * every checkpoint, and they learn from probes: a labelled image augmented with a policy drawn
 * without regard to what was learnt, which the model then classifies; how close its prediction
 * comes to the label is credited to that policy. The loop duck-types them (an augmentation, or a
 * part of a '+' chain, with these methods), so any augmentation that has them drops in.
 */
export interface ProbedAugmentation extends StatefulAugmentation {
  probePolicy(rng: Rng): unknown;
  /** The policy's operations on one uint8 image. */
  applyPolicyU8(img: Uint8Array, shape: ImageShape, policy: unknown, rng: Rng): Uint8Array;
  /** Credits a probe policy with 1 - 0.5 * sum|p - onehot(label)| of the prediction on its image (1 = perfect). */
  update(policy: unknown, proximity: number): void;
}

/** The parts of an augmentation that keep state: itself, or the stateful parts of a chain. */
export function statefulParts(a: Augmentation): StatefulAugmentation[] {
  if (isStateful(a)) return [a];
  const chain = a as { statefulParts?: () => StatefulAugmentation[] };
  return typeof chain.statefulParts === 'function' ? chain.statefulParts() : [];
}

export function isProbed(a: StatefulAugmentation): a is ProbedAugmentation {
  const x = a as Partial<ProbedAugmentation>;
  return typeof x.probePolicy === 'function' && typeof x.applyPolicyU8 === 'function' && typeof x.update === 'function';
}

/** Probe images of one step: the labelled batch under probe policies, with their labels. */
export interface Probe {
  images: tf.Tensor4D;
  labels: Int32Array;
  policies: unknown[];
  augmentation: ProbedAugmentation;
}

/**
 * Augmentation worker threads `ssl train` starts unless told otherwise: the cores but one, which is
 * left to the training thread, and at most four, since a batch only has to be ready within one
 * step (one thread augments FixMatch's 112 RandAugment views of 32x32 in about 13 ms). On a
 * two-core machine that is one: it took the input stall off the step (scripts/bench-input.ts), and
 * two measured no faster.
 */
export function defaultAugmentWorkers(): number {
  return Math.max(1, Math.min(4, defaultWorkerCount() - 1));
}

export interface FeederOptions {
  /** Weakly augmented unlabelled views per step. */
  views: number;
  /** Unlabelled images per labelled image. */
  uratio: number;
  /** The strong augmentation and its views per step (FixMatch). */
  strong?: { augmentation: Augmentation; views: number };
  /** Augmentation worker threads (0: in-thread, as it also is where no compiled worker exists). */
  workers?: number;
  /** Steps' batches kept in flight beyond the one being trained (0: each is made when asked for). */
  prefetch?: number;
}

/**
 * Where the feeder stands, as a checkpoint stores it: the generator and the index streams as they
 * were before the oldest batch not yet handed out was drawn, and the stateful-augmentation states
 * (in `InputFeeder.stateful` order) each such pending batch was requested with. Restored, the
 * feeder redraws exactly those batches, so a resumed run trains on what the uninterrupted one did.
 */
export interface FeederState {
  labeled: BatcherState;
  unlabeled: BatcherState | null;
  feederRng: RandomStateSnapshot;
  pendingAugmentation: unknown[][];
}

/**
 * Batches are drawn from a generator of their own, so that how far ahead they are drawn can never
 * shift the run's generator (initialisation, dropout and noise, MixUp). It is seeded from the run
 * seed moved by a fixed odd constant (2^32 / golden ratio): independent of the model, so every
 * architecture and algorithm with the same seed sees the same data order.
 */
const FEEDER_SEED_OFFSET = 0x9e3779b9;

export function feederSeed(runSeed: number): number {
  return (runSeed + FEEDER_SEED_OFFSET) % 2 ** 32;
}

/** A checkpoint's feeder state; checkpoints of earlier versions drew batches from the run's generator and lack some of it. */
export interface CheckpointFeederFields {
  rng: RandomStateSnapshot;
  labeled: BatcherState;
  unlabeled: BatcherState | null;
  feederRng?: RandomStateSnapshot;
  pendingAugmentation?: unknown[][];
}

/**
 * Earlier checkpoints are resumed with their data order (the index streams) kept and a feeder
 * generator seeded from the run generator's next word, read from a copy so the run's own stream
 * is left as saved; they had no batch in flight.
 */
export function feederStateFromCheckpoint(meta: CheckpointFeederFields): FeederState {
  const feederRng = meta.feederRng ?? new RandomState(feederSeed(RandomState.fromState(meta.rng).randint(0, 2 ** 32))).getState();
  return { labeled: meta.labeled, unlabeled: meta.unlabeled, feederRng, pendingAugmentation: meta.pendingAugmentation ?? [] };
}

interface Snapshot {
  rng: RandomStateSnapshot;
  labeled: BatcherState;
  unlabeled: BatcherState | null;
}

interface Augmented {
  /** The labelled images, then each weak view of the unlabelled ones. */
  weak: Float32Array;
  strong: Float32Array | null;
  probe: { images: Float32Array; policies: CtaPolicy[] } | null;
}

/** One step's batch: its indices and seeds drawn, its augmentation requested. */
interface Plan {
  before: Snapshot;
  augmentation: unknown[];
  batch: number;
  labeledIndex: Int32Array;
  labels: Int32Array;
  unlabeledIndex: Int32Array | null;
  result: Promise<Augmented>;
}

/**
 * Builds the batch tensors of one step: augmented labelled images, the unlabelled views (weak,
 * and strong when asked), the dataset indices of every row, and, when the strong augmentation is
 * adaptive, probe images for its update.
 *
 * A step's plan is drawn on this thread from the feeder's own generator, always in the same order
 * (labelled indices, labelled seeds, unlabelled indices, weak-view seeds per view, strong seeds
 * per view, probe seeds); each image is augmented by an AugmentPool with a generator seeded by its
 * own seed, so the batches depend neither on the worker count nor on the prefetch depth. While a
 * step trains, the next `prefetch` plans are being augmented.
 *
 * An adaptive augmentation's state travels with each request as it was when the plan was drawn:
 * with prefetch 1, step k+1's strong views use the weights from before step k's probe update. The
 * prefetch depth therefore fixes that lag and is part of what a run computes; with no adaptive
 * augmentation it changes nothing.
 */
export class InputFeeder {
  private readonly size: number;
  readonly labeled: Batcher;
  readonly unlabeled: Batcher | null;
  /** The probed part of the strong augmentation, if any. */
  private readonly probed: ProbedAugmentation | null;
  /** Every stateful part, weak then strong: the order of a plan's `augmentation` (and of the trainer's checkpoint). */
  readonly stateful: StatefulAugmentation[];
  private readonly prefetch: number;
  private pool: AugmentPool | null = null;
  private closed = false;
  private queue: Plan[] = [];
  /** Augmentation states of restored pending plans, for the next plans drawn. */
  private replay: unknown[][] = [];

  constructor(
    private readonly data: TrainingData,
    private readonly augment: Augmentation,
    private readonly rng: RandomState,
    private readonly opts: FeederOptions,
  ) {
    this.size = imageSize(data.shape);
    this.labeled = new Batcher(data.labeled.count, rng);
    const usesUnlabeled = opts.views > 0 || (opts.strong?.views ?? 0) > 0;
    this.unlabeled = usesUnlabeled && data.unlabeled ? new Batcher(data.unlabeled.count, rng) : null;
    this.probed = (opts.strong && statefulParts(opts.strong.augmentation).find(isProbed)) || null;
    this.stateful = [...statefulParts(augment), ...(opts.strong ? statefulParts(opts.strong.augmentation) : [])];
    this.prefetch = opts.prefetch ?? 1;
    if (!Number.isInteger(this.prefetch) || this.prefetch < 0) throw new RangeError(`prefetch must be a non-negative integer, got ${this.prefetch}`);
    // workers rebuild augmentations from their names: one that is not registered must fail here
    getAugmentation(augment.name);
    if (opts.strong) getAugmentation(opts.strong.augmentation.name);
  }

  /** Augmentation worker threads running (0 before the first batch, in-thread, or closed). */
  get workers(): number {
    return this.pool?.workers ?? 0;
  }

  private snapshot(): Snapshot {
    return { rng: this.rng.getState(), labeled: this.labeled.getState(), unlabeled: this.unlabeled?.getState() ?? null };
  }

  /** The states of `a`'s stateful parts, by name, as the pool takes them. */
  private stateOf(a: Augmentation, states: unknown[]): Record<string, unknown> | undefined {
    const parts = statefulParts(a);
    if (parts.length === 0) return undefined;
    return Object.fromEntries(parts.map((p) => [p.name, states[this.stateful.indexOf(p)]]));
  }

  private gather(set: ImageSet, idx: Int32Array, copies: number): Uint8Array {
    const out = new Uint8Array(copies * idx.length * this.size);
    for (let c = 0, o = 0; c < copies; c++) {
      for (let i = 0; i < idx.length; i++, o += this.size) out.set(set.images.subarray(idx[i] * this.size, (idx[i] + 1) * this.size), o);
    }
    return out;
  }

  private getPool(): AugmentPool {
    if (this.closed) throw new Error('the input feeder is closed');
    // started on first use, so a run that fails before its first step leaves no threads behind
    this.pool ??= new AugmentPool({ workers: this.opts.workers ?? defaultAugmentWorkers() });
    return this.pool;
  }

  private draw(batch: number): Plan {
    const pool = this.getPool();
    const before = this.snapshot();
    const augmentation = this.replay.shift() ?? this.stateful.map((a) => a.getState());
    const shape = this.data.shape;
    const labeledIndex = this.labeled.next(batch);
    const labels = new Int32Array(batch);
    for (let i = 0; i < batch; i++) labels[i] = this.data.labeled.labels[labeledIndex[i]];
    const weakSeeds: Uint32Array[] = [drawSeeds(this.rng, batch)];
    const weakImages = [this.gather(this.data.labeled, labeledIndex, 1)];
    let unlabeledIndex: Int32Array | null = null;
    let strong: Promise<Float32Array> | null = null;
    const u = this.data.unlabeled;
    if (this.unlabeled && u) {
      unlabeledIndex = this.unlabeled.next(batch * this.opts.uratio);
      const ui = unlabeledIndex;
      for (let v = 0; v < this.opts.views; v++) weakSeeds.push(drawSeeds(this.rng, ui.length));
      weakImages.push(this.gather(u, ui, this.opts.views));
      const s = this.opts.strong;
      if (s && s.views > 0) {
        const seeds = concatArrays(Uint32Array, Array.from({ length: s.views }, () => drawSeeds(this.rng, ui.length)));
        const req = { images: this.gather(u, ui, s.views), shape, augment: s.augmentation.name, seeds, state: this.stateOf(s.augmentation, augmentation) };
        strong = pool.augment(req).then((r) => r.images as Float32Array);
      }
    }
    let probe: Promise<Augmented['probe']> | null = null;
    if (this.probed) {
      const seeds = drawSeeds(this.rng, batch);
      const state = { ...this.stateOf(this.augment, augmentation), [this.probed.name]: augmentation[this.stateful.indexOf(this.probed)] };
      // the weak augmentation, then a probe policy of the adaptive part alone (the rest of the strong chain is left out)
      const req = { images: weakImages[0], shape, augment: `${this.augment.name}+${this.probed.name}`, seeds, state, probe: true };
      probe = pool.augment(req).then((r) => ({ images: r.images as Float32Array, policies: r.policies! }));
    }
    const weakReq = { images: concatArrays(Uint8Array, weakImages), shape, augment: this.augment.name, seeds: concatArrays(Uint32Array, weakSeeds), state: this.stateOf(this.augment, augmentation) };
    const weak = pool.augment(weakReq).then((r) => r.images as Float32Array);
    const result = Promise.all([weak, strong, probe]).then(([w, s, p]) => ({ weak: w, strong: s, probe: p }));
    // a plan dropped by setState or close is never awaited: its failure must not go unhandled
    result.catch(() => undefined);
    return { before, augmentation, batch, labeledIndex, labels, unlabeledIndex, result };
  }

  /** The next step's batch; the following `prefetch` are augmented meanwhile. */
  async next(batch: number): Promise<{ inputs: Inputs; probe: Probe | null }> {
    while (this.queue.length < this.prefetch + 1) this.queue.push(this.draw(batch));
    const plan = this.queue.shift()!;
    if (plan.batch !== batch) throw new Error(`feeder: batches of ${plan.batch} were drawn ahead, ${batch} asked for`);
    const r = await plan.result;
    const { height: h, width: w, channels: c } = this.data.shape;
    const n = this.size;
    const view = (a: Float32Array, i: number, rows: number) => tf.tensor4d(a.subarray(i * rows * n, (i + 1) * rows * n), [rows, h, w, c]);
    const inputs: Inputs = { x: view(r.weak, 0, batch), labels: tf.tensor1d(plan.labels, 'int32'), u: [], labeledIndex: plan.labeledIndex };
    const ui = plan.unlabeledIndex;
    if (ui) {
      inputs.unlabeledIndex = ui;
      const rest = r.weak.subarray(batch * n);
      for (let v = 0; v < this.opts.views; v++) inputs.u.push(view(rest, v, ui.length));
      if (r.strong) inputs.uStrong = Array.from({ length: this.opts.strong!.views }, (_, v) => view(r.strong!, v, ui.length));
    }
    const probe = r.probe && this.probed ? { images: view(r.probe.images, 0, batch), labels: plan.labels, policies: r.probe.policies, augmentation: this.probed } : null;
    return { inputs, probe };
  }

  getState(): FeederState {
    const at = this.queue[0]?.before ?? this.snapshot();
    return { labeled: at.labeled, unlabeled: at.unlabeled, feederRng: at.rng, pendingAugmentation: [...this.queue.map((p) => p.augmentation), ...this.replay] };
  }

  setState(s: FeederState): void {
    const pending = s.pendingAugmentation;
    if (!Array.isArray(pending) || !pending.every((p) => Array.isArray(p) && p.length === this.stateful.length)) {
      throw new Error(`feeder state: pendingAugmentation must list, per pending batch, ${this.stateful.length} augmentation state(s)`);
    }
    this.rng.setState(s.feederRng);
    this.labeled.setState(s.labeled);
    if (this.unlabeled && s.unlabeled) this.unlabeled.setState(s.unlabeled);
    this.queue = [];
    this.replay = pending.map((p) => p.slice());
  }

  /** Ends the worker threads; batches still in flight are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }
}

/** Folds a step's probe predictions (EMA weights, inference mode, as FixMatch does) into the augmentation. */
export async function updateFromProbe(probe: Probe, forward: (x: tf.Tensor4D) => tf.Tensor2D): Promise<void> {
  const probs = tf.tidy(() => tf.softmax(forward(probe.images)));
  const p = (await probs.data()) as Float32Array;
  probs.dispose();
  probe.images.dispose();
  const k = p.length / probe.labels.length;
  for (let i = 0; i < probe.labels.length; i++) {
    let err = 0;
    for (let c = 0; c < k; c++) err += Math.abs(p[i * k + c] - (c === probe.labels[i] ? 1 : 0));
    probe.augmentation.update(probe.policies[i], 1 - 0.5 * err);
  }
}
