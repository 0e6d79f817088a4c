import * as fs from 'fs';
import * as path from 'path';
import type { ImageShape } from '../data/augment';
import { decodeImageExample, decodeLabel } from '../data/example';
import { decodeImage } from '../data/png';
import { parseTrainDatasetName } from '../data/dataset-name';
import { readRecords } from '../data/tfrecord';
import { UserError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';
import { listCheckpoints } from '../train/checkpoint';
import { runDirFor } from '../train/trainer';
import { identityDifferences, ResolvedTrain, RunIdentity } from './train-args';

/**
 * What a sweep needs to know about a run before starting it: its directory (which depends on the
 * dataset's class count and image size, as `ssl train` names it), how far it got, and which sweep
 * it belongs to.
 */

export interface DatasetFacts {
  name: string;
  base: string;
  nclass: number;
  shape: ImageShape;
}

function firstExisting(...files: string[]): string {
  return files.find((f) => fs.existsSync(f)) ?? files[0];
}

/** The files `ssl train` reads for a dataset name, picked as loadTrainingData picks them. */
export function trainingFiles(root: string, dataset: string): { base: string; labeled: string; validFrom: string; valid: number; test: string; skipValid: boolean } {
  const full = /^([A-Za-z0-9_]+)-(\d+)$/.exec(dataset);
  if (full) {
    const train = path.join(root, `${full[1]}-train.tfrecord`);
    return { base: full[1], labeled: train, validFrom: train, valid: Number(full[2]), test: path.join(root, `${full[1]}-test.tfrecord`), skipValid: true };
  }
  const p = parseTrainDatasetName(dataset);
  const prefix = path.join(root, 'SSL', `${p.name}.${p.seed}@${p.size}`);
  // an aug-copy dataset may lack its own label and test files: the base split's serve
  const labeled = p.augCopies ? firstExisting(`${prefix}-label.tfrecord`, path.join(root, 'SSL', `${p.base}.${p.seed}@${p.size}-label.tfrecord`)) : `${prefix}-label.tfrecord`;
  const test = p.augCopies ? firstExisting(path.join(root, `${p.name}-test.tfrecord`), path.join(root, `${p.base}-test.tfrecord`)) : path.join(root, `${p.name}-test.tfrecord`);
  return { base: p.base, labeled, validFrom: `${prefix}-unlabel.tfrecord`, valid: p.valid, test, skipValid: false };
}

const factsCache = new Map<string, DatasetFacts | null>();

/**
 * Class count and image shape of a training dataset without decoding it: labels only, and one
 * image for the shape. The class count follows loadTrainingData (1 + the largest label of the
 * labelled, validation and test records). null when a file is missing (its split is not made yet).
 */
export async function datasetFacts(root: string, dataset: string): Promise<DatasetFacts | null> {
  const key = `${root}\0${dataset}`;
  if (factsCache.has(key)) return factsCache.get(key) ?? null;
  const f = trainingFiles(root, dataset);
  if (![f.labeled, f.validFrom, f.test].every((x) => fs.existsSync(x))) return null;
  let maxLabel = 0;
  let first: Uint8Array | null = null;
  let i = 0;
  for (const rec of readRecords(f.labeled)) {
    // the fully-supervised set is the train file after its first <valid> records
    if (!f.skipValid || i >= f.valid) {
      first = first ?? rec;
      maxLabel = Math.max(maxLabel, decodeLabel(rec));
    }
    i++;
  }
  i = 0;
  for (const rec of readRecords(f.validFrom)) {
    if (i++ >= f.valid) break;
    maxLabel = Math.max(maxLabel, decodeLabel(rec));
  }
  for (const rec of readRecords(f.test)) maxLabel = Math.max(maxLabel, decodeLabel(rec));
  if (!first) throw new UserError(`dataset ${dataset} has no labelled images (${f.labeled})`);
  const img = await decodeImage(decodeImageExample(first).image);
  const facts = { name: dataset, base: f.base, nclass: maxLabel + 1, shape: { height: img.height, width: img.width, channels: img.channels } };
  factsCache.set(key, facts);
  return facts;
}

/** Forget cached facts (files were just created). */
export function clearDatasetFacts(): void {
  factsCache.clear();
}

/** The run directory `ssl train` will use, or null while the dataset's files do not exist. */
export async function runDirOf(t: ResolvedTrain): Promise<string | null> {
  const facts = await datasetFacts(t.dataRoot, t.dataset);
  if (!facts) return null;
  // a class mapping fixes the class count, as it does for ssl train
  const names = (t.cfg as { classNames?: string[] }).classNames;
  return runDirFor(t.cfg, names ? { ...facts, nclass: names.length } : facts);
}

export type RunProgress = { kind: 'new' } | { kind: 'partial'; imagesSeen: number } | { kind: 'finished'; imagesSeen: number };

/**
 * How far a run got, from its newest checkpoint: the trainer checkpoints when it reaches
 * train_kimg, so a checkpoint at or past it means the run is finished.
 */
export function runProgress(runDir: string, trainKimg: number): RunProgress {
  const last = listCheckpoints(path.join(runDir, 'tf')).pop();
  if (!last) return { kind: 'new' };
  return last.imagesSeen >= trainKimg * 1024 ? { kind: 'finished', imagesSeen: last.imagesSeen } : { kind: 'partial', imagesSeen: last.imagesSeen };
}

/** `<run-dir>/sweep.json`: which command, of which sweep, owns the run. */
export const SWEEP_MARKER = 'sweep.json';

export interface SweepMarker {
  sweep: string;
  command: string;
  identity: RunIdentity;
}

export function readMarker(runDir: string): SweepMarker | null {
  const file = path.join(runDir, SWEEP_MARKER);
  if (!fs.existsSync(file)) return null;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as SweepMarker;
  } catch {
    throw new UserError(`${file} is unreadable; delete it to let this sweep take the run over`);
  }
}

/**
 * A run directory belongs to the sweep whose command settings it was trained with. Another sweep
 * may share it only with the same settings (the same run); otherwise resuming would mix two
 * experiments in one directory (train_kimg, say, is not in the directory name).
 */
export function checkOwnership(runDir: string, identity: RunIdentity): void {
  const m = readMarker(runDir);
  if (!m) return;
  const diff = identityDifferences(identity, m.identity);
  if (diff.length > 0) {
    throw new UserError(
      `${runDir} belongs to a different sweep (${m.sweep}: \`${m.command}\`; ${diff.slice(0, 3).join(', ')}${diff.length > 3 ? ', ...' : ''} here vs there); ` +
        `use another --train-dir, or delete ${path.join(runDir, SWEEP_MARKER)} to continue that run with these settings`,
    );
  }
}

export function writeMarker(runDir: string, marker: SweepMarker): void {
  writeFileAtomic(path.join(runDir, SWEEP_MARKER), JSON.stringify(marker, null, 2) + '\n');
}
