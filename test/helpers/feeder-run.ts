import * as crypto from 'crypto';
import * as tf from '@tensorflow/tfjs';
import { getAugmentation } from '../../src/data/augment';
import { RandomState } from '../../src/random';
import { InputFeeder, type FeederState, type Probe } from '../../src/train/feeder';
import { syntheticData } from './synthetic';

/**
 * Runs an InputFeeder for some steps and fingerprints every batch, the same way in-process (ts-jest:
 * augmentation in-thread) and in a child process from dist/ (real worker threads), so the two can
 * be compared.
 */

export interface FeederRunOptions {
  steps: number;
  workers?: number;
  prefetch?: number;
  /** Teach CTAugment from every step's probes, as training does. */
  adapt?: boolean;
  /** Before this step, record the feeder's state and the live CTAugment state (as a checkpoint would). */
  saveAt?: number;
  /** Start from a recorded state. */
  resume?: SavedFeeder;
}

export interface SavedFeeder {
  feeder: FeederState;
  augmentation: unknown[];
}

export interface FeederRunResult {
  /** One fingerprint per step: every tensor, index and probe policy of its batch. */
  digests: string[];
  workers: number;
  saved?: SavedFeeder;
  tensorsBefore: number;
  tensorsAfter: number;
}

export const BATCH = 4;

/** Pushes the bins each probe used hard towards a proximity of its own, so CTAugment's sampling visibly changes. */
export function adaptFromProbe(probe: Probe): void {
  probe.policies.forEach((policy, i) => {
    const proximity = ((probe.labels[i] + i) % 3) / 2;
    for (let r = 0; r < 40; r++) probe.augmentation.update(policy, proximity);
  });
}

function bytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

export async function runFeeder(o: FeederRunOptions): Promise<FeederRunResult> {
  const data = syntheticData();
  const strong = getAugmentation('svhn+ctaugment');
  const feeder = new InputFeeder(data, getAugmentation('cifar10'), new RandomState(7), {
    views: 2,
    uratio: 2,
    strong: { augmentation: strong, views: 1 },
    workers: o.workers ?? 0,
    prefetch: o.prefetch,
  });
  const tensorsBefore = tf.memory().numTensors;
  const digests: string[] = [];
  let saved: SavedFeeder | undefined;
  let workers = 0;
  try {
    if (o.resume) {
      const r = o.resume;
      feeder.stateful.forEach((a, i) => a.setState(r.augmentation[i]));
      feeder.setState(r.feeder);
    }
    for (let s = 0; s < o.steps; s++) {
      if (o.saveAt === s) saved = { feeder: feeder.getState(), augmentation: feeder.stateful.map((a) => a.getState()) };
      const { inputs, probe } = await feeder.next(BATCH);
      workers = Math.max(workers, feeder.workers);
      const h = crypto.createHash('sha256');
      const tensors = [inputs.x, inputs.labels, ...inputs.u, ...(inputs.uStrong ?? []), ...(probe ? [probe.images] : [])];
      for (const t of tensors) h.update(bytes(await t.data()));
      h.update(bytes(inputs.labeledIndex!));
      h.update(bytes(inputs.unlabeledIndex!));
      h.update(JSON.stringify(probe?.policies ?? null));
      digests.push(h.digest('hex'));
      if (o.adapt && probe) adaptFromProbe(probe);
      tf.dispose(tensors);
    }
  } finally {
    await feeder.close();
  }
  return { digests, workers, saved, tensorsBefore, tensorsAfter: tf.memory().numTensors };
}
