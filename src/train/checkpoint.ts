import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { writeFileAtomic } from '../util/atomic-write';

/**
 * One checkpoint is one file, `tf/model.ckpt-<images seen, 8 digits>.sslckpt`, written atomically:
 *   "SSLCKPT1" | uint32 header length | JSON header | float32 tensor data
 * The header names every tensor (group/name, shape, offset) and carries the run's non-tensor state
 * (step, generator state, data order, optimiser step count), so a resumed run continues exactly.
 * The format is backend-neutral: plain float32 values.
 */

const MAGIC = 'SSLCKPT1';

export interface TensorEntry {
  name: string; // "<group>/<variable name>"
  shape: number[];
  offset: number; // in float32 elements from the start of the data section
}

export interface CheckpointHeader {
  format: 1;
  imagesSeen: number;
  meta: Record<string, unknown>;
  tensors: TensorEntry[];
}

export interface Checkpoint {
  header: CheckpointHeader;
  tensors: Map<string, { shape: number[]; values: Float32Array }>;
}

export function checkpointName(imagesSeen: number): string {
  return `model.ckpt-${String(imagesSeen).padStart(8, '0')}.sslckpt`;
}

const CKPT_RE = /^model\.ckpt-(\d+)\.sslckpt$/;

/** Checkpoints in a directory, oldest first. */
export function listCheckpoints(dir: string): Array<{ path: string; imagesSeen: number }> {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .map((f) => ({ f, m: CKPT_RE.exec(f) }))
    .filter((x) => x.m)
    .map((x) => ({ path: path.join(dir, x.f), imagesSeen: Number(x.m![1]) }))
    .sort((a, b) => a.imagesSeen - b.imagesSeen);
}

/** Values kept in JS rather than in a tensor (per-sample state), saved the same way. */
export interface HostTensor {
  shape: number[];
  values: Float32Array;
}

export async function saveCheckpoint(
  file: string,
  imagesSeen: number,
  groups: Record<string, Map<string, tf.Tensor | HostTensor>>,
  meta: Record<string, unknown>,
): Promise<void> {
  const entries: TensorEntry[] = [];
  const chunks: Float32Array[] = [];
  let offset = 0;
  for (const [group, m] of Object.entries(groups)) {
    for (const [name, t] of m) {
      const values = 'dataId' in t ? ((await t.data()) as Float32Array) : t.values;
      entries.push({ name: `${group}/${name}`, shape: t.shape.slice(), offset });
      chunks.push(values instanceof Float32Array ? values : Float32Array.from(values));
      offset += values.length;
    }
  }
  const header: CheckpointHeader = { format: 1, imagesSeen, meta, tensors: entries };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  // pad so the float data is 4-byte aligned and can be viewed without copying
  const headerBytes = MAGIC.length + 4 + json.length;
  const pad = (4 - (headerBytes % 4)) % 4;
  const out = Buffer.alloc(headerBytes + pad + offset * 4);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt32LE(json.length + pad, MAGIC.length);
  json.copy(out, MAGIC.length + 4);
  out.fill(0x20, headerBytes, headerBytes + pad); // spaces: still valid JSON padding
  let at = headerBytes + pad;
  for (const c of chunks) {
    Buffer.from(c.buffer, c.byteOffset, c.byteLength).copy(out, at);
    at += c.byteLength;
  }
  writeFileAtomic(file, out);
}

export function loadCheckpoint(file: string): Checkpoint {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new UserError(`cannot read checkpoint ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const bad = (why: string) => new UserError(`${file} is not a valid ssl checkpoint (${why}); pass a run directory or a model.ckpt-*.sslckpt file`);
  if (buf.length < MAGIC.length + 4 || buf.toString('latin1', 0, MAGIC.length) !== MAGIC) throw bad('bad magic');
  const hlen = buf.readUInt32LE(MAGIC.length);
  const dataStart = MAGIC.length + 4 + hlen;
  if (dataStart > buf.length) throw bad('truncated header');
  let header: CheckpointHeader;
  try {
    header = JSON.parse(buf.toString('utf8', MAGIC.length + 4, dataStart));
  } catch {
    throw bad('unreadable header');
  }
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset + dataStart, buf.byteOffset + buf.length));
  const tensors = new Map<string, { shape: number[]; values: Float32Array }>();
  for (const e of header.tensors ?? []) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (e.offset + size > data.length) throw bad(`tensor ${e.name} runs past the end of the file`);
    tensors.set(e.name, { shape: e.shape, values: data.subarray(e.offset, e.offset + size) });
  }
  return { header, tensors };
}

/** Copies a checkpoint group into variables, checking names and shapes. */
export function restoreGroup(ck: Checkpoint, group: string, vars: Map<string, tf.Variable>, file: string): void {
  for (const [name, v] of vars) {
    const t = ck.tensors.get(`${group}/${name}`);
    if (!t) throw new UserError(`checkpoint ${file} has no ${group}/${name}: it was written by a different model (check --arch/--filters/--scales/--repeat)`);
    if (t.shape.join('x') !== v.shape.join('x')) {
      throw new UserError(`checkpoint ${file}: ${group}/${name} has shape ${t.shape.join('x')}, the model expects ${v.shape.join('x')}`);
    }
    tf.tidy(() => v.assign(tf.tensor(t.values, t.shape, 'float32')));
  }
}

/** Copies a saved host array back, checking that it exists and has the expected size. */
export function restoreHost(ck: Checkpoint, name: string, into: Float32Array, file: string): void {
  const t = ck.tensors.get(name);
  if (!t) throw new UserError(`checkpoint ${file} has no ${name}: it was written by a different algorithm or dataset; use another --train-dir`);
  if (t.values.length !== into.length) throw new UserError(`checkpoint ${file}: ${name} holds ${t.values.length} values, this run needs ${into.length}; the dataset changed since it was written`);
  into.set(t.values);
}

/** Keeps only the newest `keep` checkpoints. */
export function pruneCheckpoints(dir: string, keep: number): void {
  const all = listCheckpoints(dir);
  for (const c of all.slice(0, Math.max(0, all.length - keep))) fs.rmSync(c.path, { force: true });
}
