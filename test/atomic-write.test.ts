import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { encodeNpy, writeNpy } from '../src/data/npy';
import { readAllRecords, RecordWriter, writeRecords } from '../src/data/tfrecord';
import { UserError } from '../src/errors';
import { EventWriter, readEventFile } from '../src/train/events';
import { commitTemp, isTempPath, tempPathFor, toWriteError, writeFileAtomic } from '../src/util/atomic-write';
import { acquireLock } from '../src/util/lock';

/**
 * Files are written whole or not at all, and a write that cannot be done (a full disk, a read-only
 * or unwritable directory) ends in one clear line with existing files untouched and no temporary
 * file left behind.
 *
 * Where this process may mount file systems (root in a container, as in development), a full
 * disk is a real 64 KiB tmpfs and a read-only directory a tmpfs remounted read-only. Elsewhere
 * the same tests run with the errors injected into fs (`via`, in each test's name, says which),
 * since root ignores permission bits and a chmod'ed directory proves nothing.
 */

// the very module object the sources call through (esModuleInterop reads its properties live)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const realFs: typeof fs = require('fs');

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-atomic-'));
});
afterEach(() => {
  jest.restoreAllMocks();
  spawnSync('umount', [dir]);
  fs.rmSync(dir, { recursive: true, force: true });
});

const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: injected`), { code });

/** Whether `dir` could be made a tmpfs of `size` (then it is one). */
function mountTmpfs(size: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]).status === 0;
}
// SSL_TEST_NO_MOUNT=1 runs the injected variant where mounting would work
const CAN_MOUNT = !process.env.SSL_TEST_NO_MOUNT && (() => {
  const probe = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-mount-probe-'));
  const ok = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', probe]).status === 0;
  if (ok) spawnSync('umount', [probe]);
  fs.rmdirSync(probe);
  return ok;
})();
const via = CAN_MOUNT ? 'a real tmpfs' : 'injected fs errors';

/** Makes the disk under `dir` full: really (fill the tmpfs) or by injecting ENOSPC into writes. */
function fillDisk(): () => void {
  if (CAN_MOUNT) {
    const filler = path.join(dir, 'filler');
    try {
      fs.writeFileSync(filler, Buffer.alloc(1 << 20));
    } catch (e) {
      expect((e as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    return () => fs.rmSync(filler);
  }
  const spy = jest.spyOn(realFs, 'writeSync').mockImplementation(() => {
    throw errno('ENOSPC');
  });
  return () => spy.mockRestore();
}

/** Makes `dir` read-only: really (remount the tmpfs) or by injecting EROFS into every write. */
function makeReadOnly(): void {
  if (CAN_MOUNT) {
    expect(spawnSync('mount', ['-o', 'remount,ro', dir]).status).toBe(0);
    return;
  }
  const inside = (p: fs.PathLike): boolean => path.resolve(String(p)).startsWith(dir);
  const guard = <K extends 'openSync' | 'mkdirSync' | 'writeFileSync' | 'linkSync' | 'renameSync'>(name: K, writes: (...a: never[]) => boolean) => {
    const orig = realFs[name] as (...a: unknown[]) => unknown;
    jest.spyOn(realFs, name).mockImplementation(((...a: never[]) => {
      if (writes(...a)) throw errno('EROFS');
      return orig.apply(realFs, a);
    }) as never);
  };
  guard('openSync', (p: fs.PathLike, flags?: string) => inside(p) && flags !== undefined && flags !== 'r');
  guard('mkdirSync', (p: fs.PathLike) => inside(p) && !fs.existsSync(String(p)));
  guard('writeFileSync', (p: fs.PathLike) => inside(p));
  guard('linkSync', (_a: fs.PathLike, p: fs.PathLike) => inside(p));
  guard('renameSync', (_a: fs.PathLike, p: fs.PathLike) => inside(p));
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
}

/** The listing of `dir`, to show nothing new (no temporary file) appeared. */
const listing = (): string[] => fs.readdirSync(dir).filter((f) => f !== 'filler').sort();

describe('writeFileAtomic', () => {
  it('replaces a file whole and leaves no temporary file', () => {
    const f = path.join(dir, 'sub', 'a.json');
    writeFileAtomic(f, 'one');
    writeFileAtomic(f, Buffer.from('two, longer'));
    expect(fs.readFileSync(f, 'utf8')).toBe('two, longer');
    expect(fs.readdirSync(path.dirname(f))).toEqual(['a.json']);
  });

  it('writes everything even when the system writes a few bytes at a time', () => {
    const orig = realFs.writeSync;
    jest.spyOn(realFs, 'writeSync').mockImplementation(((fd: number, buf: Uint8Array, off?: number, len?: number, pos?: number | null) =>
      orig(fd, buf, off ?? 0, Math.min(len ?? buf.length - (off ?? 0), 3), pos)) as never);
    const data = Buffer.from('a'.repeat(100) + 'é'.repeat(50));
    writeFileAtomic(path.join(dir, 'slow.txt'), data.toString('utf8'));
    expect(fs.readFileSync(path.join(dir, 'slow.txt')).equals(data)).toBe(true);
  });

  it('names its temporary files so that readers can tell them apart', () => {
    const t = tempPathFor(path.join(dir, 'x.tfrecord'));
    expect(path.dirname(t)).toBe(dir);
    expect(isTempPath(t)).toBe(true);
    expect(isTempPath(path.join(dir, 'x.tfrecord'))).toBe(false);
  });

  it('passes an unexpected error on unchanged, still removing its temporary file', () => {
    jest.spyOn(realFs, 'fsyncSync').mockImplementation(() => {
      throw errno('EIO');
    });
    const e = thrown(() => writeFileAtomic(path.join(dir, 'b.txt'), 'x'));
    expect(e).not.toBeInstanceOf(UserError);
    expect((e as NodeJS.ErrnoException).code).toBe('EIO');
    expect(listing()).toEqual([]);
  });

  it('commitTemp removes the temporary file when the rename fails', () => {
    const tmp = tempPathFor(path.join(dir, 'c.txt'));
    fs.writeFileSync(tmp, 'x');
    const e = thrown(() => commitTemp(tmp, path.join(dir, 'no-such-dir', 'c.txt')));
    expect((e as NodeJS.ErrnoException).code).toBe('ENOENT');
    expect(listing()).toEqual([]);
  });
});

describe('toWriteError: one line saying what to do', () => {
  it.each([
    ['ENOSPC', /^disk full while writing \/x\/f; free space and re-run$/],
    ['EDQUOT', /^disk quota exceeded while writing \/x\/f; free space and re-run$/],
    ['EROFS', /^cannot write \/x\/f: read-only file system; /],
    ['EACCES', /^cannot write \/x\/f: permission denied; make \/x writable /],
    ['EPERM', /^cannot write \/x\/f: permission denied; /],
    ['ENOTDIR', /^cannot write \/x\/f: a file stands where a directory is needed/],
  ])('%s', (code, message) => {
    const e = toWriteError(errno(code), '/x/f') as Error;
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toMatch(message);
    expect(e.message).not.toContain('\n');
  });

  it('leaves other errors alone', () => {
    const e = errno('EIO');
    expect(toWriteError(e, '/x/f')).toBe(e);
  });
});

describe(`a full disk (via ${via})`, () => {
  beforeEach(() => {
    if (CAN_MOUNT) expect(mountTmpfs('64k')).toBe(true);
  });

  it('writeFileAtomic and writeNpy: one line, the old file untouched, nothing left behind', () => {
    const f = path.join(dir, 'a.json');
    writeFileAtomic(f, 'old');
    const npy = path.join(dir, 'a.npy');
    writeNpy(npy, new Float32Array([1, 2]));
    const oldNpy = fs.readFileSync(npy);
    const free = fillDisk();
    for (const [target, write] of [
      [f, () => writeFileAtomic(f, 'x'.repeat(200_000))],
      [npy, () => writeNpy(npy, new Float32Array(50_000))],
    ] as const) {
      const e = thrown(write);
      expect(e).toBeInstanceOf(UserError);
      expect(e.message).toBe(`disk full while writing ${target}; free space and re-run`);
    }
    free();
    expect(fs.readFileSync(f, 'utf8')).toBe('old');
    expect(fs.readFileSync(npy).equals(oldNpy)).toBe(true);
    expect(listing()).toEqual(['a.json', 'a.npy']);
    // with room again, the same writes succeed
    writeFileAtomic(f, 'new');
    expect(fs.readFileSync(f, 'utf8')).toBe('new');
    expect(encodeNpy(new Float32Array([1, 2])).equals(oldNpy)).toBe(true);
  });

  it('RecordWriter: one line, the old file untouched, nothing left behind', () => {
    const f = path.join(dir, 'a.tfrecord');
    writeRecords(f, [Buffer.from('old')]);
    const free = fillDisk();
    const e = thrown(() => writeRecords(f, Array.from({ length: 40 }, () => new Uint8Array(5000))));
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toBe(`disk full while writing ${f}; free space and re-run`);
    // a writer the caller still aborts after the failure stays quiet
    const w = new RecordWriter(path.join(dir, 'b.tfrecord'));
    w.write(new Uint8Array(300_000));
    expect(() => w.close()).toThrow(/^disk full while writing .*b\.tfrecord; free space and re-run$/);
    w.abort();
    free();
    expect(readAllRecords(f).map((r) => Buffer.from(r).toString())).toEqual(['old']);
    expect(listing()).toEqual(['a.tfrecord']);
  });

  it('EventWriter: the failed events are cut back off, earlier ones stay readable, later ones append cleanly', () => {
    const w = new EventWriter(dir);
    w.scalar('accuracy', 50, 1024);
    w.flush();
    const free = fillDisk();
    for (let s = 2; s < 200; s++) w.scalar('accuracy', s, s * 1024);
    const e = thrown(() => w.flush());
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toBe(`disk full while writing ${w.path}; free space and re-run`);
    expect(readEventFile(w.path).map((ev) => ev.step)).toEqual([0, 1024]);
    free();
    w.scalar('accuracy', 60, 4096);
    w.close();
    expect(readEventFile(w.path).map((ev) => ev.step)).toEqual([0, 1024, 4096]);
  });
});

describe(`a read-only directory (via ${via})`, () => {
  beforeEach(() => {
    if (CAN_MOUNT) expect(mountTmpfs('1m')).toBe(true);
  });

  it('every writer says so in one line and leaves existing files untouched', () => {
    const json = path.join(dir, 'a.json');
    const rec = path.join(dir, 'a.tfrecord');
    writeFileAtomic(json, 'old');
    writeRecords(rec, [Buffer.from('old')]);
    const before = listing();
    makeReadOnly();
    const expectReadOnly = (target: string, fn: () => unknown) => {
      const e = thrown(fn);
      expect(e).toBeInstanceOf(UserError);
      expect(e.message).toMatch(new RegExp(`^cannot write ${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: read-only file system; `));
      expect(e.message).not.toContain('\n');
    };
    expectReadOnly(json, () => writeFileAtomic(json, 'new'));
    expectReadOnly(path.join(dir, 'b.npy'), () => writeNpy(path.join(dir, 'b.npy'), new Uint8Array(3)));
    expectReadOnly(rec, () => writeRecords(rec, [Buffer.from('new')]));
    expectReadOnly(path.join(dir, 'run', 'events'), () => new EventWriter(path.join(dir, 'run', 'events')));
    expectReadOnly(path.join(dir, '.lock'), () => acquireLock(dir, 'training'));
    expect(fs.readFileSync(json, 'utf8')).toBe('old');
    expect(readAllRecords(rec).map((r) => Buffer.from(r).toString())).toEqual(['old']);
    expect(listing()).toEqual(before);
  });
});
