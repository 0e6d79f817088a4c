import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';

/**
 * `rename-files`: RealMix's rename_files.py. Every `*.<ext>` file under a folder (recursively, in
 * sorted order of absolute paths; hidden files and folders are not matched, as Python's glob does
 * not match them) is renamed in its own folder to `<number>_<class>.<ext>`, where number = its
 * position in that order + the start index, zero-padded to the digits of (file count + start), and
 * class = the name of its folder with every `-` removed. Files directly in a folder whose name
 * contains the skip text (the original: "all") keep their names, but still use up a number.
 *
 * Unlike the original, nothing is ever overwritten: a name that is taken by a file outside the
 * renaming stops everything before the first rename, and renames that take each other's names
 * (a second run after files were added) go through a temporary name.
 */

export type FileType = 'png' | 'jpg';

export interface RenameOptions {
  dir: string;
  /** Number of the first file (the original's --index). */
  start?: number;
  filetype?: FileType;
  /** Files directly in a folder whose name contains this text are skipped; false: none are. */
  skip?: string | false;
}

export interface Move {
  from: string;
  to: string;
}

export interface RenamePlan {
  dir: string;
  /** Files matched, skipped ones included (they use up numbers). */
  total: number;
  moves: Move[];
  /** Files that already have their new name. */
  unchanged: string[];
  skipped: string[];
}

/** Python sorts str by code point; UTF-8 byte order is code point order (JS's < is UTF-16 order). */
function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function collect(dir: string, ext: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch (e) {
      throw new UserError(`cannot list ${d}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && e.name.endsWith(ext)) out.push(p);
    }
  };
  walk(dir);
  return out.sort(byCodePoint);
}

export function planRenames(opts: RenameOptions): RenamePlan {
  const dir = path.resolve(opts.dir);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new UserError(`--target-dir ${opts.dir} is not a folder`);
  const start = opts.start ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) throw new UserError(`--index must be a whole number, at least 0, got ${start}`);
  const ext = `.${opts.filetype ?? 'png'}`;
  const skip = opts.skip === undefined ? 'all' : opts.skip;
  const files = collect(dir, ext);
  if (files.length === 0) throw new UserError(`no *${ext} files under ${dir}${ext === '.png' ? ' (for JPEG files pass --filetype jpg)' : ''}`);
  const width = String(files.length + start).length;
  const plan: RenamePlan = { dir, total: files.length, moves: [], unchanged: [], skipped: [] };
  files.forEach((from, i) => {
    const folder = path.basename(path.dirname(from));
    if (skip !== false && skip !== '' && folder.includes(skip)) {
      plan.skipped.push(from);
      return;
    }
    const to = path.join(path.dirname(from), `${String(i + start).padStart(width, '0')}_${folder.replace(/-/g, '')}${ext}`);
    if (to === from) plan.unchanged.push(from);
    else plan.moves.push({ from, to });
  });
  const leaving = new Set(plan.moves.map((m) => m.from));
  const taken = plan.moves.filter((m) => fs.existsSync(m.to) && !leaving.has(m.to));
  if (taken.length > 0) {
    const rel = (p: string) => path.relative(dir, p);
    throw new UserError(
      `${taken.length} new name${taken.length === 1 ? ' is' : 's are'} taken by other files, e.g. ${rel(taken[0].from)} -> ${rel(taken[0].to)}; ` +
        'nothing was renamed (use another --index, or move those files away)',
    );
  }
  return plan;
}

/** Renames without ever replacing an existing file: a hard link fails if the name exists. */
function moveNoOverwrite(from: string, to: string): void {
  try {
    fs.linkSync(from, to);
    fs.unlinkSync(from);
    return;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UserError(`${to} appeared while renaming; ${from} keeps its name and nothing was overwritten`);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS' && code !== 'EXDEV') {
      throw new UserError(`cannot rename ${from}: ${code ?? (e as Error).message}`);
    }
  }
  // a file system without hard links: check, then rename
  if (fs.existsSync(to)) throw new UserError(`${to} appeared while renaming; ${from} keeps its name and nothing was overwritten`);
  fs.renameSync(from, to);
}

/**
 * Carries out a plan. Files whose current name is another file's new name first step aside to a
 * temporary name in their folder (`<name>.renaming-<pid>`), so that no rename waits on another.
 */
export function applyRenames(plan: RenamePlan): number {
  const targets = new Set(plan.moves.map((m) => m.to));
  const moves = plan.moves.map((m) => {
    if (!targets.has(m.from)) return m;
    const aside = `${m.from}.renaming-${process.pid}`;
    moveNoOverwrite(m.from, aside);
    return { from: aside, to: m.to };
  });
  for (const m of moves) moveNoOverwrite(m.from, m.to);
  return moves.length;
}
