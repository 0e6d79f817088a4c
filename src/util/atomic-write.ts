import * as fs from 'fs';
import * as path from 'path';

/**
 * Files appear whole or not at all: write to a temporary name in the same directory, fsync, then
 * rename over the target (rename is atomic within one file system). A crash leaves at most a
 * stray `.tmp-*` file, never a truncated target.
 */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.tmp-${process.pid}-${Date.now().toString(36)}-${tmpCounter++}`);
}
let tmpCounter = 0;

export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = tempPathFor(target);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, data as Uint8Array);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tmp, target);
}

/** Move a finished temporary file into place. */
export function commitTemp(tmp: string, target: string): void {
  fs.renameSync(tmp, target);
}
