import { UserError } from '../errors';

/**
 * Dataset names, as the originals spell them in file names and run directories:
 *   split:    <name>.<seed>@<size>              e.g. cifar10.1@250
 *   training: <name>.<seed>@<labelled>-<valid>  e.g. mnist.1@100-1000
 * A name ending in `_aug<N>` (cifar10_aug50) is a split with N precomputed augmented copies of
 * `base` (cifar10). Numbers are written without leading zeros so one dataset has one spelling,
 * and hence one set of files.
 */

export const TRAIN_GRAMMAR = '<name>.<seed>@<labelled>-<valid>';
export const SPLIT_GRAMMAR = '<name>.<seed>@<size>';

export interface SplitName {
  name: string;
  seed: number;
  size: number;
  /** `name` without a trailing `_aug<N>`. */
  base: string;
  /** N when `name` ends in `_aug<N>`. */
  augCopies?: number;
}

export interface TrainDatasetName extends SplitName {
  /** Validation records: the first `valid` records of the unlabelled file. */
  valid: number;
}

const NAME = '[A-Za-z0-9_]+';
const NUM = '0|[1-9][0-9]*';
const TRAIN_RE = new RegExp(`^(${NAME})\\.(${NUM})@(${NUM})-(${NUM})$`);
const SPLIT_RE = new RegExp(`^(${NAME})\\.(${NUM})@(${NUM})$`);
const AUG_RE = /^(.+)_aug([1-9][0-9]*)$/;

function nameParts(name: string): Pick<SplitName, 'name' | 'base' | 'augCopies'> {
  const aug = AUG_RE.exec(name);
  if (!aug) return { name, base: name };
  return { name, base: aug[1], augCopies: Number(aug[2]) };
}

/** The name as the one-line error shows it: quoted, with line breaks and control characters escaped. */
const quoted = (s: string): string => JSON.stringify(s);

function toInt(s: string, what: string, input: string, kind: 'dataset' | 'split', grammar: string, example: string): number {
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new UserError(`bad ${kind} name ${quoted(input)}: ${what} ${s} is too large (expected ${grammar}, e.g. ${example})`);
  return n;
}

/** Why a string failed the grammar, for the one-line error. */
function diagnose(s: string, withValid: boolean): string {
  if (s.length === 0) return 'it is empty';
  const dot = s.indexOf('.');
  if (dot < 0) return "there is no '.<seed>'";
  if (!/^[A-Za-z0-9_]+$/.test(s.slice(0, dot))) return 'the name part may hold only letters, digits and _';
  if (!s.includes('@')) return "there is no '@<size>'";
  const after = s.slice(s.indexOf('@') + 1);
  if (withValid && !after.includes('-')) return "there is no '-<valid>' after the labelled size";
  if (!withValid && after.includes('-')) return "a split name has no '-<valid>' part";
  return 'seed and sizes must be non-negative integers without leading zeros';
}

export function parseTrainDatasetName(s: string): TrainDatasetName {
  const m = TRAIN_RE.exec(s);
  const example = 'mnist.1@100-1000';
  if (!m) throw new UserError(`bad dataset name ${quoted(s)}: ${diagnose(s, true)}; expected ${TRAIN_GRAMMAR}, e.g. ${example}`);
  const size = toInt(m[3], 'labelled size', s, 'dataset', TRAIN_GRAMMAR, example);
  if (size === 0) throw new UserError(`bad dataset name ${quoted(s)}: the labelled size must be at least 1 (expected ${TRAIN_GRAMMAR}, e.g. ${example})`);
  return {
    ...nameParts(m[1]),
    seed: toInt(m[2], 'seed', s, 'dataset', TRAIN_GRAMMAR, example),
    size,
    valid: toInt(m[4], 'validation size', s, 'dataset', TRAIN_GRAMMAR, example),
  };
}

export function parseSplitName(s: string): SplitName {
  const m = SPLIT_RE.exec(s);
  const example = 'cifar10.1@250';
  if (!m) throw new UserError(`bad split name ${quoted(s)}: ${diagnose(s, false)}; expected ${SPLIT_GRAMMAR}, e.g. ${example}`);
  const size = toInt(m[3], 'size', s, 'split', SPLIT_GRAMMAR, example);
  if (size === 0) throw new UserError(`bad split name ${quoted(s)}: the size must be at least 1 (expected ${SPLIT_GRAMMAR}, e.g. ${example})`);
  return { ...nameParts(m[1]), seed: toInt(m[2], 'seed', s, 'split', SPLIT_GRAMMAR, example), size };
}

/** `<name>.<seed>@<size>`; the inverse of parseSplitName. */
export function formatSplitName(p: { name: string; seed: number; size: number }): string {
  return `${p.name}.${p.seed}@${p.size}`;
}

/** `<name>.<seed>@<labelled>-<valid>`; the inverse of parseTrainDatasetName. */
export function formatTrainDatasetName(p: { name: string; seed: number; size: number; valid: number }): string {
  return `${formatSplitName(p)}-${p.valid}`;
}

/**
 * `<name>_aug<copies>`: the dataset name of `copies` precomputed augmented copies of `name`, as
 * make_aug_copy names it (cifar10 → cifar10_aug50).
 */
export function augCopyName(name: string, copies: number): string {
  if (!Number.isInteger(copies) || copies < 1) throw new UserError(`the number of augmented copies must be at least 1, got ${copies}`);
  return `${name}_aug${copies}`;
}
