import { createHash } from 'crypto';
import { UserError } from '../errors';
import { DatasetPart, partRecords, resolveTarget } from './dataset-files';
import { decodeImageExample } from './example';
import { decodeImage } from './png';

/**
 * `check-split`: do the labelled, unlabelled, validation and test sets of a dataset share images?
 * Like the original check_split it hashes every image with SHA-512 and counts the hashes that two
 * sets have in common. The hash is over the decoded pixels (with height, width and channels), not
 * the PNG bytes, so the same image found again after re-encoding (another PNG encoder or
 * compression level, an augmented-copy file) still counts; `png` hashing is offered for speed and
 * only finds byte-identical copies.
 */

export type HashMode = 'pixels' | 'png';

export interface SetSummary {
  role: string;
  file: string;
  records: number;
  /** Distinct images. */
  distinct: number;
  /** Records whose image occurs earlier in the same set. */
  duplicates: number;
}

export interface Overlap {
  a: string;
  b: string;
  /** Distinct images found in both sets. */
  images: number;
  /** Up to a few record indices (in set `a`'s file) of shared images, to look at. */
  examples: number[];
}

export interface CheckSplitReport {
  dataset: string;
  hash: HashMode;
  sets: SetSummary[];
  /** Every pair of sets, in the order the sets are listed. */
  overlaps: Overlap[];
  /** Sum of `images` over all pairs. */
  totalOverlap: number;
}

const EXAMPLES = 5;
const BATCH = 64;

async function hashRecord(record: Uint8Array, mode: HashMode, where: () => string): Promise<string> {
  let image: Uint8Array;
  try {
    image = decodeImageExample(record).image;
  } catch (e) {
    throw new UserError(`${where()}: ${(e as Error).message}`);
  }
  const h = createHash('sha512');
  if (mode === 'png') return h.update(image).digest('base64');
  let img;
  try {
    img = await decodeImage(image);
  } catch (e) {
    throw new UserError(`${where()}: ${(e as Error).message}`);
  }
  // the shape goes in too: the same bytes as 32x96 and 96x32 are different images
  return h.update(`${img.height}x${img.width}x${img.channels}:`).update(img.data).digest('base64');
}

/** Hash -> record indices (file indices) of the part, in record order. */
async function hashPart(part: DatasetPart, mode: HashMode, onRecord?: () => void): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  let batch: Array<{ record: Uint8Array; index: number }> = [];
  const flush = async () => {
    const hashes = await Promise.all(batch.map((r) => hashRecord(r.record, mode, () => `${part.file}: record ${r.index}`)));
    hashes.forEach((h, i) => {
      const list = out.get(h);
      if (list) list.push(batch[i].index);
      else out.set(h, [batch[i].index]);
      onRecord?.();
    });
    batch = [];
  };
  for (const r of partRecords(part)) {
    batch.push(r);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  return out;
}

export interface CheckSplitOptions {
  root: string;
  dataset: string;
  hash?: HashMode;
  onProgress?: (p: { role: string; done: number; total: number }) => void;
}

export async function checkSplit(opts: CheckSplitOptions): Promise<CheckSplitReport> {
  const mode = opts.hash ?? 'pixels';
  const target = resolveTarget(opts.root, opts.dataset);
  if (target.kind !== 'split' && target.kind !== 'training') {
    throw new UserError(`check-split takes a split (e.g. cifar10.1@250) or a training dataset (e.g. cifar10.1@250-5000), got "${opts.dataset}"`);
  }
  const sets: SetSummary[] = [];
  const hashes: Array<Map<string, number[]>> = [];
  for (const part of target.parts) {
    let done = 0;
    let total = 0;
    // a quick count first (reading is a small part of the cost of decoding), for the progress bar
    if (opts.onProgress) for (const _ of partRecords(part)) total++;
    const h = await hashPart(part, mode, () => opts.onProgress?.({ role: part.role, done: ++done, total }));
    const records = [...h.values()].reduce((a, l) => a + l.length, 0);
    sets.push({ role: part.role, file: part.file, records, distinct: h.size, duplicates: records - h.size });
    hashes.push(h);
  }
  const overlaps: Overlap[] = [];
  for (let i = 0; i < sets.length; i++) {
    for (let j = i + 1; j < sets.length; j++) {
      let images = 0;
      const examples: number[] = [];
      for (const [h, idx] of hashes[i]) {
        if (!hashes[j].has(h)) continue;
        images++;
        if (examples.length < EXAMPLES) examples.push(idx[0]);
      }
      overlaps.push({ a: sets[i].role, b: sets[j].role, images, examples: examples.sort((x, y) => x - y) });
    }
  }
  return { dataset: opts.dataset, hash: mode, sets, overlaps, totalOverlap: overlaps.reduce((a, o) => a + o.images, 0) };
}

/** The report as text: set sizes, then the matrix of shared distinct images (diagonal: distinct images per set). */
export function formatCheckSplit(r: CheckSplitReport): string[] {
  const lines = [`Dataset ${r.dataset} (images compared by ${r.hash === 'pixels' ? 'decoded pixels' : 'PNG bytes'}, SHA-512)`];
  for (const s of r.sets) {
    lines.push(`  ${s.role.padEnd(10)} ${String(s.records).padStart(8)} records, ${s.distinct} distinct${s.duplicates ? `, ${s.duplicates} repeated within the set` : ''}`);
  }
  const roles = r.sets.map((s) => s.role);
  const width = Math.max(10, ...r.sets.map((s) => String(s.records).length + 1));
  const cell = (i: number, j: number): number => {
    if (i === j) return r.sets[i].distinct;
    const o = r.overlaps.find((x) => (x.a === roles[i] && x.b === roles[j]) || (x.a === roles[j] && x.b === roles[i]));
    return o ? o.images : 0;
  };
  lines.push('', `  ${''.padEnd(10)}${roles.map((x) => x.padStart(width + 1)).join('')}`);
  roles.forEach((ri, i) => lines.push(`  ${ri.padEnd(10)}${roles.map((_, j) => String(cell(i, j)).padStart(width + 1)).join('')}`));
  lines.push('');
  const found = r.overlaps.filter((o) => o.images > 0);
  if (found.length === 0) lines.push('No image is in two sets.');
  for (const o of found) lines.push(`${o.a} and ${o.b} share ${o.images} image${o.images === 1 ? '' : 's'} (e.g. records ${o.examples.join(', ')} of the ${o.a} file)`);
  return lines;
}
