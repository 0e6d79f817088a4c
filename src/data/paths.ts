import * as path from 'path';

/** The data root: --data-dir, else $ML_DATA (as the originals), else ./data. */
export function dataRoot(flag?: string): string {
  return path.resolve(flag ?? process.env.ML_DATA ?? 'data');
}

export function baseDatasetFile(root: string, name: string, subset: string): string {
  return path.join(root, `${name}-${subset}.tfrecord`);
}

/** `$ML_DATA/SSL/<name>.<seed>@<size>` */
export function splitPrefix(root: string, name: string, seed: number, size: number): string {
  return path.join(root, 'SSL', `${name}.${seed}@${size}`);
}
