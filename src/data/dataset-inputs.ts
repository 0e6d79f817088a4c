import * as fs from 'fs';
import * as path from 'path';
import { UserError } from '../errors';
import type { Progress } from '../util/progress';
import { fileRange } from './byte-reader';
import { fetchCached, type RemoteFile } from './download';
import type { WrittenFile } from './dataset-output';
import { readTar } from './tar';

/**
 * Where a dataset's source files come from: the archives or files the user names with --from (a
 * file, or a folder holding the archive or its extracted contents), else the download cache
 * `<data root>/downloads/`, else a download into that cache. Builders then read the files they
 * need by name ("members"), the same way whether they sit in a .tar.gz or loose in a folder.
 */

/** One way a dataset is published, e.g. CIFAR-10's binary version. */
export interface InputFormat {
  format: string;
  /** Base names of the files the builder reads (inside the archive, or loose). */
  members: string[];
  /** The archive holding them, when they come packed. */
  archive?: RemoteFile;
  /** Downloads of loose members (SVHN's .mat files), when they come unpacked. */
  remotes?: RemoteFile[];
}

export interface ResolvedInput {
  format: string;
  /** The archive to read members from, or null when they are loose files. */
  archive: string | null;
  /** Loose members by base name. */
  files: Map<string, string>;
}

export interface BuildContext {
  root: string;
  force: boolean;
  /** --from paths; empty means the download cache, then the network. */
  from: string[];
  downloadDir: string;
  progress: (label: string, total: number) => Progress;
  log: (line: string) => void;
  /** Replaces fetchCached (tests never download). */
  fetch?: (remote: RemoteFile, dir: string) => Promise<string>;
}

/** Files by base name; of two with one name, the one nearer the top of its --from folder wins. */
export type FilePool = Map<string, string>;

const MAX_DEPTH = 4;
const MAX_ENTRIES = 100_000;

/** Every regular file in the --from paths (folders searched up to 4 levels deep, level by level) by base name. */
export function filePool(paths: string[]): FilePool {
  const pool: FilePool = new Map();
  let seen = 0;
  const add = (file: string): void => {
    const base = path.basename(file);
    // macOS AppleDouble companions (._name) are not the files they shadow
    if (!base.startsWith('._') && !pool.has(base)) pool.set(base, file);
  };
  const byName = (a: fs.Dirent, b: fs.Dirent): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  for (const p of paths) {
    const abs = path.resolve(p);
    if (!fs.existsSync(abs)) throw new UserError(`--from ${p}: no such file or folder`);
    if (!fs.statSync(abs).isDirectory()) {
      add(abs);
      continue;
    }
    let level = [abs];
    for (let depth = 1; depth <= MAX_DEPTH && level.length > 0 && seen < MAX_ENTRIES; depth++) {
      const next: string[] = [];
      for (const dir of level) {
        let entries: fs.Dirent[];
        try {
          entries = fs.readdirSync(dir, { withFileTypes: true }).sort(byName);
        } catch {
          continue;
        }
        for (const e of entries) {
          if (++seen > MAX_ENTRIES) break;
          const full = path.join(dir, e.name);
          if (e.isFile() || (e.isSymbolicLink() && isFile(full))) add(full);
          else if (e.isDirectory()) next.push(full);
        }
      }
      level = next;
    }
  }
  return pool;
}

function isFile(f: string): boolean {
  try {
    return fs.statSync(f).isFile();
  } catch {
    return false;
  }
}

/** The first format (in preference order) whose archive or every member is in the pool. */
export function findInput(formats: InputFormat[], pool: FilePool): ResolvedInput | null {
  for (const f of formats) {
    if (f.archive && pool.has(f.archive.file)) return { format: f.format, archive: pool.get(f.archive.file) as string, files: new Map() };
  }
  for (const f of formats) {
    if (f.members.every((m) => pool.has(m))) return { format: f.format, archive: null, files: new Map(f.members.map((m) => [m, pool.get(m) as string])) };
  }
  return null;
}

/** What --from would have to hold, for a message. */
export function describeFormats(formats: InputFormat[]): string {
  return formats
    .map((f) => (f.archive ? `${f.archive.file} (or its files ${f.members.join(', ')})` : f.members.join(', ')))
    .join('; or ');
}

/** The download cache's files (top level only). */
export function cachePool(dir: string): FilePool {
  const pool: FilePool = new Map();
  if (!fs.existsSync(dir)) return pool;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isFile()) pool.set(e.name, path.join(dir, e.name));
  return pool;
}

/**
 * The input of `dataset`: found in --from (an error when --from is given and lacks it: no
 * download then), else in the cache, else downloaded (the first format's files).
 */
export async function resolveInput(dataset: string, formats: InputFormat[], ctx: BuildContext, pool?: FilePool): Promise<ResolvedInput> {
  if (ctx.from.length > 0) {
    const found = findInput(formats, pool ?? filePool(ctx.from)) ?? findInput(formats, cachePool(ctx.downloadDir));
    if (!found) throw new UserError(`${dataset}: not found in --from ${ctx.from.join(', ')}: expected ${describeFormats(formats)}; or leave out --from to download it`);
    return found;
  }
  const cached = findInput(formats, cachePool(ctx.downloadDir));
  if (cached) return cached;
  const f = formats[0];
  const fetch = ctx.fetch ?? ((r: RemoteFile, dir: string) => fetchCached(r, dir, { progress: ctx.progress, log: ctx.log }));
  if (f.archive) return { format: f.format, archive: await fetch(f.archive, ctx.downloadDir), files: new Map() };
  const files = new Map<string, string>();
  for (const r of f.remotes ?? []) files.set(r.file, await fetch(r, ctx.downloadDir));
  return { format: f.format, archive: null, files };
}

export interface Member {
  name: string;
  size: number;
  /** Where it came from, for messages: `archive.tar.gz:path/in/archive` or the file's path. */
  where: string;
  body(): AsyncGenerator<Buffer>;
}

/**
 * The wanted members of an input, in the order the input holds them (archive order; the order of
 * `wanted` for loose files). Each must be read (or left) before the next is asked for. A member
 * missing from the archive is a UserError once the archive has been read to its end.
 * `onBytes` reports input bytes read (compressed, for archives) against the input's total.
 */
export async function* readMembers(input: ResolvedInput, wanted: string[], onBytes?: (done: number, total: number) => void): AsyncGenerator<Member> {
  const left = new Set(wanted);
  if (input.archive) {
    const archive = input.archive;
    for await (const e of readTar(archive, { onBytes })) {
      const base = e.name.split('/').pop() as string;
      if (e.type !== 'file' || !left.has(base)) continue;
      left.delete(base);
      yield { name: base, size: e.size, where: `${archive}:${e.name}`, body: () => e.body() };
      // the rest of a 2.5 GB archive need not be unpacked once everything is found
      if (left.size === 0) return;
    }
    throw new UserError(`${archive}: lacks ${[...left].join(', ')}; is it the right archive?`);
  }
  const sizes = wanted.map((m) => {
    const f = input.files.get(m);
    if (!f) throw new UserError(`missing input file ${m}`);
    return fs.statSync(f).size;
  });
  const total = sizes.reduce((a, b) => a + b, 0);
  let done = 0;
  for (let i = 0; i < wanted.length; i++) {
    const file = input.files.get(wanted[i]) as string;
    const size = sizes[i];
    yield {
      name: wanted[i],
      size,
      where: file,
      async *body() {
        for await (const c of fileRange(file, 0, size)) {
          done += (c as Buffer).length;
          onBytes?.(done, total);
          yield c as Buffer;
        }
      },
    };
  }
}

/** A member's bytes as one buffer. */
export async function readWhole(m: Member): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const p of m.body()) {
    parts.push(p);
    n += p.length;
  }
  return Buffer.concat(parts, n);
}

/** Every wanted member as a buffer, by name (for datasets small enough to hold: CIFAR). */
export async function readAllMembers(input: ResolvedInput, wanted: string[], onBytes?: (done: number, total: number) => void): Promise<Map<string, { data: Buffer; where: string }>> {
  const out = new Map<string, { data: Buffer; where: string }>();
  for await (const m of readMembers(input, wanted, onBytes)) out.set(m.name, { data: await readWhole(m), where: m.where });
  return out;
}

/** A dataset `ssl create-datasets` can build. */
export interface DatasetBuilder {
  name: string;
  /** Files whose presence means the dataset is installed (skipped unless --force). */
  outputs(root: string): string[];
  /** Published formats of its sources, preferred (and downloaded) first; empty when it needs none. */
  formats: InputFormat[];
  /**
   * False when this build needs no source files: svhn_noextra copies svhn's files when they exist
   * or when `planned` (the datasets built before it in this run) includes svhn.
   */
  needsInput?(ctx: BuildContext, planned: string[]): boolean;
  build(ctx: BuildContext, input: ResolvedInput | null): Promise<WrittenFile[]>;
}

/**
 * A progress bar in MiB over an input as it is read, made on the first report (when the total is
 * known). `complete` fills it: a reader may stop before the end, once it has what it needs.
 */
export function readingProgress(ctx: BuildContext, label: string): { onBytes: (done: number, total: number) => void; complete: () => void; stop: () => void } {
  const MiB = 1 << 20;
  let bar: Progress | null = null;
  let totalMiB = 0;
  return {
    onBytes(done, total) {
      totalMiB = Math.max(1, Math.ceil(total / MiB));
      bar ??= ctx.progress(`${label} (MiB read)`, totalMiB);
      bar.update(Math.floor(done / MiB));
    },
    complete() {
      bar?.update(totalMiB);
    },
    stop() {
      bar?.stop();
    },
  };
}
