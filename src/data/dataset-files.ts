import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { parseSplitName, parseTrainDatasetName, SplitName, SPLIT_GRAMMAR, TRAIN_GRAMMAR } from './dataset-name';
import { splitPrefix } from './paths';
import { readRecords } from './tfrecord';

/**
 * What a command argument such as `cifar10`, `cifar10.1@250`, `cifar10.1@250-5000` or
 * `some/file.tfrecord` stands for on disk, so that `inspect`, `check-split` and `filter` agree on
 * which files a name covers:
 *   file      the one file
 *   base      <root>/<name>-{train,test,extra,unlabeled,unlabel}.tfrecord, those that exist
 *   split     <root>/SSL/<name>.<seed>@<size>-{label,unlabel}.tfrecord and <root>/<name>-test.tfrecord
 *   training  as split, with the first <valid> unlabelled records as the validation set (as training reads them)
 */

export type TargetKind = 'file' | 'base' | 'split' | 'training';

export type PartRole = 'labelled' | 'unlabelled' | 'validation' | 'test' | 'train' | 'extra' | 'unlabeled' | 'unlabel' | 'file';

/** A run of records of one file: records [skip, skip + limit). */
export interface DatasetPart {
  role: PartRole;
  file: string;
  skip: number;
  limit: number;
}

export interface ResolvedTarget {
  kind: TargetKind;
  /** The argument as given. */
  arg: string;
  parts: DatasetPart[];
  /** For split and training names. */
  split?: SplitName;
  valid?: number;
  /** For split and training names: the files behind the parts (test only when it exists). */
  splitFiles?: { label: string; unlabel: string; map: string; test?: string };
}

/** Subsets of a base dataset, in the order they are listed. */
export const BASE_SUBSETS = ['train', 'test', 'extra', 'unlabeled', 'unlabel'] as const;

const NAME_RE = /^[A-Za-z0-9_]+$/;

/** A path, not a dataset name: it has a directory part or a file extension, or names an existing file. */
export function looksLikeFile(arg: string): boolean {
  return arg.includes('/') || arg.includes(path.sep) || /\.tfrecords?$/i.test(arg) || (fs.existsSync(arg) && fs.statSync(arg).isFile());
}

function whole(role: PartRole, file: string): DatasetPart {
  return { role, file, skip: 0, limit: Infinity };
}

function requireFile(file: string, howToMake: string): void {
  if (!fs.existsSync(file)) throw new UserError(`missing ${file}; create it with: ${howToMake}`);
}

export function splitFilesOf(root: string, s: Pick<SplitName, 'name' | 'seed' | 'size'>): { label: string; unlabel: string; map: string; test: string } {
  const prefix = splitPrefix(root, s.name, s.seed, s.size);
  return {
    label: `${prefix}-label.tfrecord`,
    unlabel: `${prefix}-unlabel.tfrecord`,
    map: `${prefix}-map.json`,
    test: path.join(root, `${s.name}-test.tfrecord`),
  };
}

function makeSplit(s: SplitName): string {
  return s.augCopies
    ? `ssl aug-copy --dataset ${s.base}.${s.seed}@${s.size} --copies ${s.augCopies}`
    : `ssl create-split --dataset ${s.name} --seed ${s.seed} --size ${s.size}`;
}

/**
 * Resolves an argument to its files. `requireTest`: a split or training name must have its test
 * file (default true; training cannot do without it).
 */
export function resolveTarget(root: string, arg: string, opts: { requireTest?: boolean } = {}): ResolvedTarget {
  const requireTest = opts.requireTest ?? true;
  if (looksLikeFile(arg)) {
    const file = path.resolve(arg);
    if (!fs.existsSync(file)) throw new UserError(`no such file: ${file}`);
    if (!fs.statSync(file).isFile()) throw new UserError(`${file} is not a file`);
    return { kind: 'file', arg, parts: [whole('file', file)] };
  }
  if (arg.includes('@')) {
    const training = arg.slice(arg.indexOf('@')).includes('-');
    const s = training ? parseTrainDatasetName(arg) : parseSplitName(arg);
    const f = splitFilesOf(root, s);
    if (s.augCopies) {
      // as training reads an augmented-copies dataset: the copy step writes only the unlabelled
      // file, so the labelled file and the test set may be the base split's
      const base = splitFilesOf(root, { ...s, name: s.base });
      if (!fs.existsSync(f.label) && fs.existsSync(base.label)) f.label = base.label;
      if (!fs.existsSync(f.test) && fs.existsSync(base.test)) f.test = base.test;
    }
    requireFile(f.label, makeSplit(s));
    requireFile(f.unlabel, makeSplit(s));
    const parts: DatasetPart[] = [whole('labelled', f.label)];
    let valid: number | undefined;
    if (training) {
      valid = (s as ReturnType<typeof parseTrainDatasetName>).valid;
      parts.push({ role: 'validation', file: f.unlabel, skip: 0, limit: valid });
      parts.push({ role: 'unlabelled', file: f.unlabel, skip: valid, limit: Infinity });
    } else {
      parts.push(whole('unlabelled', f.unlabel));
    }
    if (fs.existsSync(f.test)) parts.push(whole('test', f.test));
    else if (requireTest) requireFile(f.test, `ssl create-datasets ${s.base}`);
    const splitFiles = { label: f.label, unlabel: f.unlabel, map: f.map, test: fs.existsSync(f.test) ? f.test : undefined };
    return { kind: training ? 'training' : 'split', arg, parts, split: s, valid, splitFiles };
  }
  if (!NAME_RE.test(arg)) {
    throw new UserError(
      `"${arg}" is neither a file nor a dataset name; give a .tfrecord file, a base dataset (e.g. cifar10), ` +
        `a split (${SPLIT_GRAMMAR}) or a training dataset (${TRAIN_GRAMMAR})`,
    );
  }
  const parts = BASE_SUBSETS.map((sub) => whole(sub, path.join(root, `${arg}-${sub}.tfrecord`))).filter((p) => fs.existsSync(p.file));
  if (parts.length === 0) {
    throw new UserError(`no files of dataset ${arg} in ${root} (looked for ${arg}-train.tfrecord etc.); create them with: ssl create-datasets ${arg}`);
  }
  return { kind: 'base', arg, parts };
}

/** The records of a part with their index in the file; stops reading once past the part. */
export function* partRecords(part: DatasetPart): Generator<{ record: Uint8Array; index: number }> {
  if (part.limit <= 0) return;
  let index = 0;
  for (const record of readRecords(part.file)) {
    if (index >= part.skip) yield { record, index };
    index++;
    if (index >= part.skip + part.limit) return;
  }
}

export function describePart(part: DatasetPart): string {
  if (part.skip === 0 && part.limit === Infinity) return part.file;
  const end = part.limit === Infinity ? 'end' : String(part.skip + part.limit);
  return `${part.file} [records ${part.skip}..${end})`;
}
