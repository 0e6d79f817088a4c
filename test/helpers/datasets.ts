import * as path from 'path';
import { decodeImageExample } from '../../src/data/example';
import { decodeImage } from '../../src/data/png';
import { readAllRecords } from '../../src/data/tfrecord';
import { readNpy } from '../../src/data/npy';
import type { Progress } from '../../src/util/progress';

/** A progress factory that draws nothing, and remembers the bars asked for. */
export function silentProgress(labels: string[] = []): (label: string, total: number) => Progress {
  return (label) => {
    labels.push(label);
    return { update() {}, log() {}, stop() {} };
  };
}

export interface DecodedRecords {
  labels: number[];
  /** All images' H×W×C pixels, concatenated. */
  pixels: Uint8Array;
  shapes: string[];
}

/** Decodes every record of a TFRecord file of PNG examples. */
export async function decodeRecords(file: string): Promise<DecodedRecords> {
  const labels: number[] = [];
  const parts: Uint8Array[] = [];
  const shapes = new Set<string>();
  for (const r of readAllRecords(file)) {
    const ex = decodeImageExample(r);
    labels.push(ex.label);
    const img = await decodeImage(ex.image);
    shapes.add(`${img.height}x${img.width}x${img.channels}`);
    parts.push(img.data);
  }
  return { labels, pixels: Buffer.concat(parts), shapes: [...shapes] };
}

/** An .npy file written by the fixture script: uint8 pixels or int64 labels. */
export function npy(dir: string, name: string): { shape: number[]; values: Uint8Array | number[] } {
  const a = readNpy(path.join(dir, name));
  if (a.dtype === 'uint8') return { shape: a.shape, values: a.data };
  return { shape: a.shape, values: Array.from(a.data as ArrayLike<number | bigint>, Number) };
}
