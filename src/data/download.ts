import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as path from 'path';
import { pipeline } from 'stream/promises';
import { UserError } from '../errors';
import type { Progress } from '../util/progress';

/**
 * Dataset downloads over node's http/https, the only network access `ssl` makes. The bytes go to
 * `<dest>.part`; an interrupted transfer is resumed with an HTTP Range request (by a retry in the
 * same run, or by running the command again), and a server that ignores the range makes it start
 * over. The finished file is checked (length against Content-Length, and md5 where the dataset's
 * page publishes one) before it is renamed to `<dest>`, so `<dest>` is always a complete download.
 */

export interface RemoteFile {
  /** File name in the download cache, e.g. cifar-10-binary.tar.gz. */
  file: string;
  url: string;
  /** Published md5, when the dataset's page gives one. */
  md5?: string;
}

export interface DownloadOptions {
  md5?: string;
  /** Makes the progress bar once the size is known (unit: MiB). */
  progress?: (label: string, total: number) => Progress;
  /** Tries in all, each resuming where the last stopped (default 3). */
  attempts?: number;
  /** A connection silent this long is dropped (default 60 s). */
  idleTimeoutMs?: number;
  /** Wait before a retry (default 2 s). */
  retryDelayMs?: number;
  log?: (line: string) => void;
}

export interface DownloadResult {
  bytes: number;
  /** Bytes that were already in the .part file when the last transfer started. */
  resumedFrom: number;
}

const MiB = 1 << 20;

class HttpStatusError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function fileSize(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    return 0;
  }
}

/** Content-Range: `bytes a-b/total`, or, on a 416, a star in place of `a-b`. */
function parseContentRange(h: string | undefined): { start: number | null; total: number | null } | null {
  if (!h) return null;
  const m = /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(h.trim());
  if (!m) return null;
  return { start: m[1] !== undefined ? Number(m[1]) : null, total: m[2] === '*' ? null : Number(m[2]) };
}

/** GET, following up to 5 redirects; resolves with the response of the last request. */
function get(url: string, headers: Record<string, string>, idleTimeoutMs: number, redirects = 5): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new UserError(`bad download address ${url}`));
      return;
    }
    const mod = u.protocol === 'https:' ? https : u.protocol === 'http:' ? http : null;
    if (!mod) {
      reject(new UserError(`cannot download ${url}: only http and https addresses are supported`));
      return;
    }
    const req = mod.get(u, { headers: { 'user-agent': 'ssl-create-datasets', ...headers } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects <= 0) {
          reject(new UserError(`download of ${url} failed: too many redirects`));
          return;
        }
        get(new URL(res.headers.location, u).toString(), headers, idleTimeoutMs, redirects - 1).then(resolve, reject);
        return;
      }
      resolve(res);
    });
    req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`no data for ${idleTimeoutMs / 1000} s`)));
    req.on('error', reject);
  });
}

/**
 * Appends the body to `part` as it arrives, each piece written before the next is taken, so that
 * every byte received before an interruption is kept for the resume.
 */
function receive(res: http.IncomingMessage, part: string, append: boolean, idleTimeoutMs: number, onBytes: (n: number) => void): Promise<void> {
  const fd = fs.openSync(part, append ? 'a' : 'w');
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      reject(e);
      res.destroy();
    };
    res.on('data', (c: Buffer) => {
      try {
        let off = 0;
        while (off < c.length) off += fs.writeSync(fd, c, off, c.length - off);
        onBytes(c.length);
      } catch (e) {
        fail(e as Error);
      }
    });
    res.on('error', fail);
    // named here, before the socket's teardown reports only "aborted"
    res.setTimeout(idleTimeoutMs, () => fail(new Error(`no data for ${idleTimeoutMs / 1000} s`)));
    res.on('end', () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    // a close without an end: the body was cut off (with or without a Content-Length)
    res.on('close', () => fail(new Error('the connection was closed')));
  }).finally(() => fs.closeSync(fd));
}

export async function md5File(file: string): Promise<string> {
  const h = crypto.createHash('md5');
  await pipeline(fs.createReadStream(file, { highWaterMark: MiB }), h);
  return h.digest('hex');
}

/**
 * Downloads `url` to `dest` (see the file comment). Throws a UserError when the server refuses,
 * when every attempt was interrupted (the .part file is kept for the next run), or when the
 * md5 does not match (the .part file is deleted: resuming it cannot help).
 */
export async function download(url: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  const attempts = opts.attempts ?? 3;
  const idle = opts.idleTimeoutMs ?? 60_000;
  const part = `${dest}.part`;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const label = `Downloading ${path.basename(dest)} (MiB)`;
  let bar: Progress | null = null;
  let total: number | null = null;
  let resumedFrom = 0;
  let complete = false;
  let lastReason = '';
  try {
    for (let attempt = 1; attempt <= attempts && !complete; attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 2000));
      const have = fileSize(part);
      resumedFrom = have;
      try {
        const res = await get(url, have > 0 ? { range: `bytes=${have}-` } : {}, idle);
        const status = res.statusCode ?? 0;
        let append = false;
        if (status === 206) {
          const cr = parseContentRange(res.headers['content-range'] as string | undefined);
          if (!cr || cr.start !== have) {
            // not the range we asked for: start over
            res.resume();
            fs.rmSync(part, { force: true });
            throw new Error('the server sent the wrong range');
          }
          append = true;
          total = cr.total;
        } else if (status === 200) {
          // a fresh body (the server ignored or was not sent a range)
          resumedFrom = 0;
          const len = Number(res.headers['content-length']);
          total = Number.isFinite(len) && res.headers['content-length'] !== undefined ? len : null;
        } else if (status === 416 && have > 0) {
          res.resume();
          const cr = parseContentRange(res.headers['content-range'] as string | undefined);
          if (cr?.total === have) {
            total = have;
            complete = true;
            continue;
          }
          fs.rmSync(part, { force: true });
          throw new Error('the partial download does not fit the file on the server');
        } else {
          res.resume();
          throw new HttpStatusError(status, `HTTP ${status} ${res.statusMessage ?? ''}`.trim());
        }
        if (total !== null && !bar && opts.progress) bar = opts.progress(label, Math.max(1, Math.ceil(total / MiB)));
        let done = append ? have : 0;
        bar?.update(Math.floor(done / MiB));
        await receive(res, part, append, idle, (n) => {
          done += n;
          bar?.update(Math.floor(done / MiB));
        });
        const got = fileSize(part);
        if (total !== null && got !== total) throw new Error(`the connection closed after ${got} of ${total} bytes`);
        complete = true;
      } catch (e) {
        if (e instanceof UserError) throw e;
        if (e instanceof HttpStatusError && e.status >= 400 && e.status < 500 && e.status !== 408 && e.status !== 429) {
          throw new UserError(`download of ${url} failed: ${e.message}`);
        }
        lastReason = (e as Error).message.split('\n')[0] || String(e);
        if (attempt < attempts) opts.log?.(`Download of ${path.basename(dest)} interrupted (${lastReason}); resuming (try ${attempt + 1} of ${attempts})`);
      }
    }
  } finally {
    bar?.stop();
  }
  const got = fileSize(part);
  if (!complete) {
    if (got === 0) {
      fs.rmSync(part, { force: true });
      throw new UserError(`download of ${url} failed after ${attempts} tries (${lastReason}); check the network, or pass --from with a copy of the file`);
    }
    throw new UserError(
      `download of ${url} failed after ${attempts} tries (${lastReason}); ${got} bytes` +
        `${total !== null ? ` of ${total}` : ''} are kept in ${part}: run the command again to resume`,
    );
  }
  if (opts.md5) {
    const sum = await md5File(part);
    if (sum !== opts.md5.toLowerCase()) {
      fs.rmSync(part, { force: true });
      throw new UserError(`download of ${url} is corrupt: md5 ${sum}, expected ${opts.md5}; the download was deleted, run the command again to fetch it afresh`);
    }
  }
  fs.renameSync(part, dest);
  return { bytes: got, resumedFrom };
}

/**
 * `<dir>/<remote.file>`, downloaded first unless it is already there (a file there is complete:
 * downloads only appear under their name once checked).
 */
export async function fetchCached(remote: RemoteFile, dir: string, opts: Omit<DownloadOptions, 'md5'> = {}): Promise<string> {
  const dest = path.join(dir, remote.file);
  if (fs.existsSync(dest)) return dest;
  opts.log?.(`Downloading ${remote.url} to ${dest}`);
  await download(remote.url, dest, { ...opts, md5: remote.md5 });
  return dest;
}
