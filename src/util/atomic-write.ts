import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';

/**
 * Files appear whole or not at all: write to a temporary name in the same directory, fsync, then
 * rename over the target (rename is atomic within one file system). A failed write removes its
 * temporary file and leaves an existing target as it was; only a crash can leave a stray
 * `.<name>.tmp-*` file, never a truncated target.
 */
export function tempPathFor(target: string): string {
  const dir = path.dirname(target);
  const base = path.basename(target);
  return path.join(dir, `.${base}.tmp-${process.pid}-${Date.now().toString(36)}-${tmpCounter++}`);
}
let tmpCounter = 0;

/** True for the names tempPathFor gives (readers listing a directory skip them). */
export function isTempPath(file: string): boolean {
  return /^\..+\.tmp-\d+-[0-9a-z]+-\d+$/.test(path.basename(file));
}

/**
 * The one-line error for a write that failed for a reason the user can fix (a full disk, a
 * read-only or unwritable directory), or `e` itself for anything else (a bug, or an I/O fault
 * that deserves its stack trace).
 */
export function toWriteError(e: unknown, target: string): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'ENOSPC':
      return new UserError(`disk full while writing ${target}; free space and re-run`);
    case 'EDQUOT':
      return new UserError(`disk quota exceeded while writing ${target}; free space and re-run`);
    case 'EROFS':
      return new UserError(`cannot write ${target}: read-only file system; write somewhere writable (or remount it read-write) and re-run`);
    case 'EACCES':
    case 'EPERM':
      return new UserError(`cannot write ${target}: permission denied; make ${path.dirname(target)} writable or write somewhere else, and re-run`);
    case 'ENOTDIR':
    case 'EEXIST':
      // mkdir -p over a file, or a path through one
      return new UserError(`cannot write ${target}: a file stands where a directory is needed on that path`);
    case 'EISDIR':
      return new UserError(`cannot write ${target}: it is a directory`);
    default:
      return e;
  }
}

/** Runs `fn`, turning fixable write failures into one-line UserErrors about `target`. */
export function withWriteErrors<T>(target: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toWriteError(e, target);
  }
}

/**
 * mkdir -p that reports the real cause: Node's recursive mkdir says ENOENT when creating a missing
 * parent fails for another reason (a read-only file system, no permission), so on ENOENT the
 * missing directories are made one by one, and the first failure is the one thrown.
 */
export function ensureDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) fs.mkdirSync(d);
}

/** Writes all of `data` (writeSync may write less than asked, e.g. as the disk fills up). */
export function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
}

/** Best-effort clean-up after a failure that is already being reported. */
function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // the original error is the one worth reporting
  }
}

export function writeFileAtomic(target: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  withWriteErrors(target, () => {
    ensureDir(path.dirname(target));
    const tmp = tempPathFor(target);
    const fd = fs.openSync(tmp, 'wx');
    let open = true;
    try {
      writeAll(fd, bytes);
      fs.fsyncSync(fd);
      open = false;
      fs.closeSync(fd);
      fs.renameSync(tmp, target);
    } catch (e) {
      if (open) quietly(() => fs.closeSync(fd));
      quietly(() => fs.rmSync(tmp, { force: true }));
      throw e;
    }
  });
}

/** Move a finished temporary file into place; on failure the temporary file is removed. */
export function commitTemp(tmp: string, target: string): void {
  withWriteErrors(target, () => {
    try {
      fs.renameSync(tmp, target);
    } catch (e) {
      quietly(() => fs.rmSync(tmp, { force: true }));
      throw e;
    }
  });
}
