import sharp from 'sharp';
import { DatasetPart, partRecords, resolveTarget, ResolvedTarget, TargetKind } from './dataset-files';
import { decodeExampleFeatures, describeFeature, Feature } from './example-generic';
import { UserError } from '../errors';

/**
 * `inspect`: what a TFRecord file, or every file of a dataset, holds: record count, image shapes
 * and encodings, per-class counts (also as a percentage of the largest class, as the original
 * inspect_dataset prints them) and the first few labels. Image shapes come from the PNG/JPEG
 * headers, so a 50,000-image file is inspected in seconds without decoding a pixel; records that
 * are not image/label Examples are described by their feature keys instead.
 */

export interface PartReport {
  role: string;
  file: string;
  /** Records [skip, skip + records) of the file. */
  skip: number;
  records: number;
  /** `HxWxC` -> records. */
  shapes: Record<string, number>;
  /** png / jpeg / other -> records. */
  encodings: Record<string, number>;
  /** label -> records, for records with a one-value int64 `label`. */
  labels: Record<string, number>;
  labelMin: number | null;
  labelMax: number | null;
  firstLabels: number[];
  /** feature key -> `kind[count]` of the first record that has it. */
  features: Record<string, string>;
  /** Records that are not image/label Examples (no `image` bytes or no one-value int64 `label`). */
  otherRecords: number;
  /** The features of the first such record, described. */
  firstOther: string | null;
}

export interface InspectReport {
  target: string;
  kind: TargetKind;
  parts: PartReport[];
}

export const SAMPLE_LABELS = 10;

interface HeaderShape {
  encoding: 'png' | 'jpeg';
  height: number;
  width: number;
  channels: number;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** PNG colour type -> channels as TensorFlow's decode_png returns them (palette expands to RGB). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };

/** Height, width and channels from a PNG IHDR or a JPEG SOF marker; null for anything else. */
export function imageHeaderShape(b: Uint8Array): HeaderShape | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length >= 26 && PNG_SIGNATURE.every((v, i) => b[i] === v) && String.fromCharCode(b[12], b[13], b[14], b[15]) === 'IHDR') {
    const channels = PNG_CHANNELS[b[25]];
    if (channels === undefined) return null;
    return { encoding: 'png', width: dv.getUint32(16), height: dv.getUint32(20), channels };
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    let p = 2;
    while (p + 4 <= b.length) {
      if (b[p] !== 0xff) return null;
      const marker = b[p + 1];
      if (marker === 0xff) {
        p++;
        continue;
      }
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        p += 2;
        continue;
      }
      const len = dv.getUint16(p + 2);
      // SOF0..SOF15, except DHT (c4), JPG (c8) and DAC (cc)
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        if (p + 10 > b.length) return null;
        return { encoding: 'jpeg', height: dv.getUint16(p + 5), width: dv.getUint16(p + 7), channels: b[p + 9] };
      }
      p += 2 + len;
    }
  }
  return null;
}

async function otherShape(b: Uint8Array): Promise<{ encoding: string; shape: string }> {
  try {
    const m = await sharp(Buffer.from(b.buffer, b.byteOffset, b.byteLength)).metadata();
    return { encoding: m.format ?? 'other', shape: `${m.height}x${m.width}x${m.channels}` };
  } catch {
    return { encoding: 'undecodable', shape: 'unknown' };
  }
}

function bump(o: Record<string, number>, k: string | number): void {
  o[k] = (o[k] ?? 0) + 1;
}

function singleLabel(f: Feature | undefined): number | null {
  if (!f || f.kind !== 'int64_list' || f.values.length !== 1) return null;
  const v = f.values[0];
  return typeof v === 'number' ? v : null;
}

export async function inspectPart(part: DatasetPart): Promise<PartReport> {
  const r: PartReport = {
    role: part.role,
    file: part.file,
    skip: part.skip,
    records: 0,
    shapes: {},
    encodings: {},
    labels: {},
    labelMin: null,
    labelMax: null,
    firstLabels: [],
    features: {},
    otherRecords: 0,
    firstOther: null,
  };
  for (const { record, index } of partRecords(part)) {
    r.records++;
    let features;
    try {
      features = decodeExampleFeatures(record);
    } catch (e) {
      throw new UserError(`${part.file}: record ${index}: ${(e as Error).message}`);
    }
    for (const [k, f] of Object.entries(features)) if (!(k in r.features)) r.features[k] = `${f.kind}[${f.values.length}]`;
    const label = singleLabel(features.label);
    const image = features.image;
    if (label === null || !image || image.kind !== 'bytes_list' || image.values.length !== 1) {
      r.otherRecords++;
      r.firstOther ??= Object.keys(features)
        .sort()
        .map((k) => `${k}: ${describeFeature(features[k])}`)
        .join('; ');
      continue;
    }
    bump(r.labels, label);
    r.labelMin = r.labelMin === null ? label : Math.min(r.labelMin, label);
    r.labelMax = r.labelMax === null ? label : Math.max(r.labelMax, label);
    if (r.firstLabels.length < SAMPLE_LABELS) r.firstLabels.push(label);
    const h = imageHeaderShape(image.values[0]);
    if (h) {
      bump(r.encodings, h.encoding);
      bump(r.shapes, `${h.height}x${h.width}x${h.channels}`);
    } else {
      const o = await otherShape(image.values[0]);
      bump(r.encodings, o.encoding);
      bump(r.shapes, o.shape);
    }
  }
  return r;
}

export async function inspectTarget(root: string, arg: string): Promise<InspectReport> {
  const t: ResolvedTarget = resolveTarget(root, arg, { requireTest: false });
  const parts: PartReport[] = [];
  for (const p of t.parts) parts.push(await inspectPart(p));
  return { target: arg, kind: t.kind, parts };
}

function joinCounts(o: Record<string, number>): string {
  return Object.entries(o)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} (${n})`)
    .join(', ');
}

/** Human-readable lines; the same facts as the JSON form. */
export function formatInspect(rep: InspectReport): string[] {
  const lines: string[] = [];
  for (const p of rep.parts) {
    const where = p.skip > 0 || p.role === 'validation' ? `${p.file} [records ${p.skip}..${p.skip + p.records})` : p.file;
    lines.push(`${p.role}: ${where}`);
    lines.push(`  records: ${p.records}`);
    if (p.records === 0) continue;
    if (Object.keys(p.shapes).length > 0) lines.push(`  images: ${joinCounts(p.shapes)}; ${joinCounts(p.encodings)}`);
    if (p.labelMin !== null && p.labelMax !== null) {
      const classes = Object.keys(p.labels).map(Number).sort((a, b) => a - b);
      const largest = Math.max(...Object.values(p.labels));
      lines.push(`  labels: ${classes.length} distinct, range ${p.labelMin}..${p.labelMax}`);
      const width = String(largest).length;
      for (const c of classes) {
        const n = p.labels[c];
        lines.push(`    ${String(c).padStart(4)}: ${String(n).padStart(width)}  ${((100 * n) / largest).toFixed(1).padStart(5)}%`);
      }
      lines.push(`  first labels: ${p.firstLabels.join(' ')}`);
    }
    if (p.otherRecords > 0) lines.push(`  records that are not image/label Examples: ${p.otherRecords}; the first: ${p.firstOther}`);
    if (Object.keys(p.features).sort().join(',') !== 'image,label') {
      lines.push(`  features: ${Object.entries(p.features).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    }
  }
  return lines;
}
