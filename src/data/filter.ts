import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';
import { DatasetPart, PartRole, resolveTarget, splitFilesOf, TargetKind } from './dataset-files';
import { decodeLabel } from './example';
import { decodeExampleFeatures, encodeExampleFeatures } from './example-generic';
import { ClassSelection } from './mismatch';
import { formatSplitMap } from './create-split';
import { FOOTER_BYTES, HEADER_BYTES, readRecords, RecordWriter } from './tfrecord';

/**
 * `filter`: keep the records of listed classes, as RealMix's filter_dataset does, on one file or
 * on every file of a dataset at once, so that the output can be trained on directly:
 *   file   <input>           -> <output>.tfrecord beside the input (or at <output> when it is a path)
 *   base   <name>            -> <root>/<output>-<subset>.tfrecord for each subset present
 *   split  <name>.<s>@<n>    -> <root>/SSL/<output>.<s>@<n>-{label,unlabel}.tfrecord (+ -map.json
 *                               when the source has one) and <root>/<output>-test.tfrecord
 * The unlabelled file may keep other classes than the labelled and test files (the class-mismatch
 * experiments). Kept records are copied byte for byte in their order, labels unchanged, as the
 * original does. With remap the output is what ssl trains on as it is: the listed classes become
 * 0..k-1 in the order listed (only the label of each record is rewritten), and unlabelled records
 * of classes outside that list get OTHER_LABEL and follow the others (see passesFor).
 */

/** Label of an unlabelled record, under remap, whose class has no labelled counterpart. */
export const OTHER_LABEL = -1;

export interface FilterOptions extends ClassSelection {
  root: string;
  input: string;
  output: string;
  remap?: boolean;
  force?: boolean;
  /** Bytes of input read, per file. */
  onProgress?: (p: { file: string; done: number; total: number }) => void;
}

export interface FilteredFile {
  role: PartRole;
  input: string;
  output: string;
  read: number;
  written: number;
  /** Kept records by original label. */
  perClass: Record<number, number>;
  /** A file shared by every split of the output name that already held exactly these records. */
  unchanged: boolean;
}

export interface FilterResult {
  kind: TargetKind;
  /** The dataset name the output trains or splits under (split: `<output>.<seed>@<size>`). */
  name: string;
  files: FilteredFile[];
  mapPath?: string;
  remapPath?: string;
  /** Input files not filtered: unlabelled subsets of a base dataset, whose labels are placeholders, without --unlabel-classes. */
  skipped: string[];
}

export interface Relabel {
  classes: number[];
  unlabelClasses: number[];
  oldToNew: Map<number, number>;
  /** Unlabelled classes that are not among `classes`. */
  otherClasses: number[];
}

const UNLABELLED_ROLES: ReadonlySet<PartRole> = new Set<PartRole>(['unlabelled', 'unlabeled', 'unlabel']);
const OUTPUT_NAME = /^[A-Za-z0-9_]+$/;

export function parseClassList(text: string, flag: string): number[] {
  const words = text.split(',').map((w) => w.trim());
  if (words.length === 0 || words.some((w) => !/^\d+$/.test(w))) {
    throw new UserError(`${flag} must be a comma-separated list of class numbers such as 2,3,4, got "${text}"`);
  }
  const out = words.map(Number);
  const dup = out.find((c, i) => out.indexOf(c) !== i);
  if (dup !== undefined) throw new UserError(`${flag} lists class ${dup} twice`);
  return out;
}

export function buildRelabel(sel: ClassSelection): Relabel {
  const oldToNew = new Map(sel.classes.map((c, i) => [c, i] as const));
  const unlabelClasses = sel.unlabelClasses.length ? sel.unlabelClasses : sel.classes;
  return { classes: sel.classes, unlabelClasses, oldToNew, otherClasses: unlabelClasses.filter((c) => !oldToNew.has(c)) };
}

/** The remap file: which old class each new label stands for. */
export function formatRemap(r: Relabel): string {
  const o: Record<string, unknown> = { classes: r.classes, old_to_new: Object.fromEntries(r.oldToNew) };
  if (r.otherClasses.length > 0) {
    o.unlabel_classes = r.unlabelClasses;
    o.other_classes = r.otherClasses;
    o.other_label = OTHER_LABEL;
  }
  return JSON.stringify(o, null, 2) + '\n';
}

/** The same record with only its `label` replaced; every other feature is kept. */
export function withLabel(record: Uint8Array, label: number): Uint8Array {
  const features = decodeExampleFeatures(record);
  features.label = { kind: 'int64_list', values: [label] };
  return encodeExampleFeatures(features);
}

interface Plan {
  part: DatasetPart;
  output: string;
  keep: ReadonlySet<number>;
  /** Shared by every split of one output name: rewritten only when its content would change. */
  shared: boolean;
}

function outputFile(input: string, output: string): string {
  const name = /\.tfrecords?$/i.test(output) ? output : `${output}.tfrecord`;
  return output.includes('/') || output.includes(path.sep) ? path.resolve(name) : path.join(path.dirname(input), name);
}

function checkOutputName(output: string, inputName: string): void {
  if (!OUTPUT_NAME.test(output)) {
    throw new UserError(`--output must be a dataset name of letters, digits and _ (e.g. cifar6) when --input is a dataset, got "${output}"`);
  }
  if (output === inputName) throw new UserError(`--output ${output} is the input's own name; choose another name so the input is not overwritten`);
}

interface FilterPlan {
  kind: TargetKind;
  name: string;
  plans: Plan[];
  /** Input files left alone (unlabelled subsets of a base dataset without --unlabel-classes). */
  skipped?: string[];
  mapIn?: string;
  mapOut?: string;
  remapOut?: string;
}

function plan(opts: FilterOptions, relabel: Relabel): FilterPlan {
  const target = resolveTarget(opts.root, opts.input);
  const keepLabelled = new Set(relabel.classes);
  const keepUnlabelled = new Set(relabel.unlabelClasses);
  const keepFor = (role: PartRole) => (UNLABELLED_ROLES.has(role) ? keepUnlabelled : keepLabelled);
  if (target.kind === 'file') {
    if (opts.unlabelClasses.length > 0) {
      throw new UserError('--unlabel-classes applies to a split (its unlabelled file); with a single file use --classes');
    }
    const part = target.parts[0];
    const output = outputFile(part.file, opts.output);
    if (output === part.file) throw new UserError(`--output ${opts.output} is the input file itself; choose another name`);
    const remapOut = opts.remap ? output.replace(/\.tfrecords?$/i, '') + '-remap.json' : undefined;
    return { kind: 'file', name: path.basename(output), plans: [{ part, output, keep: keepLabelled, shared: false }], remapOut };
  }
  if (target.kind === 'base') {
    checkOutputName(opts.output, opts.input);
    // The labels of an unlabelled subset (stl10-unlabeled, a custom dataset's -unlabel) are
    // placeholders: filtering it by them takes an explicit --unlabel-classes.
    const byLabel = (part: DatasetPart) => !UNLABELLED_ROLES.has(part.role) || opts.unlabelClasses.length > 0;
    const plans = target.parts.filter(byLabel).map((part) => ({
      part,
      output: path.join(opts.root, `${opts.output}-${part.role}.tfrecord`),
      keep: keepFor(part.role),
      shared: false,
    }));
    const skipped = target.parts.filter((p) => !byLabel(p)).map((p) => p.file);
    return { kind: 'base', name: opts.output, plans, skipped, remapOut: opts.remap ? path.join(opts.root, `${opts.output}-remap.json`) : undefined };
  }
  const s = target.split!;
  checkOutputName(opts.output, s.name);
  const from = target.splitFiles!;
  const to = splitFilesOf(opts.root, { name: opts.output, seed: s.seed, size: s.size });
  const whole = (role: PartRole, file: string): DatasetPart => ({ role, file, skip: 0, limit: Infinity });
  // A training name selects the same files: validation is only the head of the unlabelled file.
  const plans: Plan[] = [
    { part: whole('labelled', from.label), output: to.label, keep: keepLabelled, shared: false },
    { part: whole('unlabelled', from.unlabel), output: to.unlabel, keep: keepUnlabelled, shared: false },
    { part: whole('test', from.test!), output: to.test, keep: keepLabelled, shared: true },
  ];
  return {
    kind: 'split',
    name: `${opts.output}.${s.seed}@${s.size}`,
    plans,
    mapIn: fs.existsSync(from.map) ? from.map : undefined,
    mapOut: to.map,
    remapOut: opts.remap ? path.join(opts.root, `${opts.output}-remap.json`) : undefined,
  };
}

interface Kept {
  read: number;
  written: number;
  perClass: Record<number, number>;
  /** Indices (within the input file) of the kept records. */
  indices: number[];
}

/**
 * Under remap, an unlabelled file that keeps classes outside --classes is written in two passes:
 * first the records of labelled classes, then the others (label OTHER_LABEL). Training takes its
 * validation set from the head of the unlabelled file and accepts only class labels there, so the
 * head must hold labelled classes; each group keeps its order (and so its class interleave).
 */
function passesFor(p: Plan, relabel: Relabel | null): Array<'all' | 'labelled' | 'other'> {
  const reorder = relabel !== null && UNLABELLED_ROLES.has(p.part.role) && relabel.otherClasses.some((c) => p.keep.has(c));
  return reorder ? ['labelled', 'other'] : ['all'];
}

/** The kept records of a part, relabelled when asked, in output order; fills `kept` as it goes. */
function* keptRecords(p: Plan, relabel: Relabel | null, kept: Kept, onBytes: (n: number) => void): Generator<Uint8Array> {
  const unlabelled = UNLABELLED_ROLES.has(p.part.role);
  for (const pass of passesFor(p, relabel)) {
    let index = 0;
    for (const record of readRecords(p.part.file)) {
      let label: number;
      try {
        label = decodeLabel(record);
      } catch (e) {
        throw new UserError(`${p.part.file}: record ${index}: ${(e as Error).message}`);
      }
      if (pass !== 'other') kept.read++;
      onBytes(HEADER_BYTES + record.length + FOOTER_BYTES);
      const inPass = pass === 'all' || (pass === 'labelled') === Boolean(relabel?.oldToNew.has(label));
      if (inPass && p.keep.has(label)) {
        kept.written++;
        kept.perClass[label] = (kept.perClass[label] ?? 0) + 1;
        kept.indices.push(index);
        if (!relabel) yield record;
        else {
          const next = relabel.oldToNew.get(label) ?? (unlabelled ? OTHER_LABEL : undefined);
          if (next === undefined) throw new Error(`no new label for class ${label}`);
          yield next === label ? record : withLabel(record, next);
        }
      }
      index++;
    }
  }
}

function sameRecords(file: string, records: Iterable<Uint8Array>): boolean {
  const existing = readRecords(file);
  let same = true;
  for (const r of records) {
    const e = existing.next();
    if (same && (e.done || !Buffer.from(e.value.buffer, e.value.byteOffset, e.value.length).equals(Buffer.from(r.buffer, r.byteOffset, r.length)))) same = false;
  }
  if (same && !existing.next().done) same = false;
  existing.return(undefined);
  return same;
}

function readSplitMap(file: string): { label: number[]; unlabel: number[] } | null {
  try {
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (Array.isArray(m.label) && Array.isArray(m.unlabel)) return m;
  } catch {
    // an unreadable map is left behind rather than failing the filter: the records are what count
  }
  return null;
}

export function filterDataset(opts: FilterOptions): FilterResult {
  if (opts.classes.length === 0) throw new UserError('--classes must list at least one class');
  const relabelInfo = buildRelabel(opts);
  const relabel = opts.remap ? relabelInfo : null;
  const p = plan(opts, relabelInfo);

  const fresh = [...p.plans.filter((x) => !x.shared).map((x) => x.output), ...(p.mapIn && p.mapOut ? [p.mapOut] : []), ...(p.kind === 'split' ? [] : p.remapOut ? [p.remapOut] : [])];
  const existing = fresh.filter((f) => fs.existsSync(f));
  if (existing.length > 0 && !opts.force) {
    throw new UserError(`${existing.map((f) => path.basename(f)).join(', ')} already exist${existing.length === 1 ? 's' : ''} in ${path.dirname(existing[0])}; pass --force to overwrite`);
  }
  const inputs = new Set(p.plans.map((x) => x.part.file));
  for (const x of p.plans) if (inputs.has(x.output)) throw new UserError(`the output ${x.output} would overwrite an input; choose another --output`);
  const remapText = formatRemap(relabelInfo);
  if (p.kind === 'split' && p.remapOut && fs.existsSync(p.remapOut) && !opts.force && fs.readFileSync(p.remapOut, 'utf8') !== remapText) {
    throw new UserError(`${p.remapOut} holds another class mapping; pass --force to overwrite it`);
  }

  const files: FilteredFile[] = [];
  const keptIndices: number[][] = [];
  const writers: RecordWriter[] = [];
  try {
    for (const x of p.plans) {
      const kept: Kept = { read: 0, written: 0, perClass: {}, indices: [] };
      const total = fs.statSync(x.part.file).size * passesFor(x, relabel).length;
      let done = 0;
      let sinceReport = 0;
      const onBytes = (n: number) => {
        done += n;
        sinceReport += n;
        if (done === total || sinceReport >= 1 << 20) {
          sinceReport = 0;
          opts.onProgress?.({ file: x.part.file, done, total });
        }
      };
      let unchanged = false;
      if (x.shared && fs.existsSync(x.output) && !opts.force) {
        unchanged = sameRecords(x.output, keptRecords(x, relabel, kept, onBytes));
        if (!unchanged) {
          throw new UserError(`${x.output} exists with other records (another --classes or --remap?); pass --force to overwrite it`);
        }
      } else {
        const w = new RecordWriter(x.output);
        writers.push(w);
        for (const r of keptRecords(x, relabel, kept, onBytes)) w.write(r);
      }
      files.push({ role: x.part.role, input: x.part.file, output: x.output, read: kept.read, written: kept.written, perClass: kept.perClass, unchanged });
      keptIndices.push(kept.indices);
    }
  } catch (e) {
    for (const w of writers) w.abort();
    throw e;
  }
  for (const w of writers) w.close();

  let mapPath: string | undefined;
  if (p.mapIn && p.mapOut) {
    const m = readSplitMap(p.mapIn);
    // positions still refer to the records of the source split's base file(s)
    if (m && m.label.length === files[0].read && m.unlabel.length === files[1].read) {
      writeFileAtomic(p.mapOut, formatSplitMap(keptIndices[0].map((i) => m.label[i]), keptIndices[1].map((i) => m.unlabel[i])));
      mapPath = p.mapOut;
    }
  }
  let remapPath: string | undefined;
  if (p.remapOut) {
    writeFileAtomic(p.remapOut, remapText);
    remapPath = p.remapOut;
  }
  return { kind: p.kind, name: p.name, files, mapPath, remapPath, skipped: p.skipped ?? [] };
}
