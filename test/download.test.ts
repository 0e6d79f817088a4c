import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { download, fetchCached, md5File } from '../src/data/download';
import { UserError } from '../src/errors';
import { silentProgress } from './helpers/datasets';

/** A local server (never the network) whose behaviour each test sets. */
const BODY = crypto.randomBytes(3 * (1 << 20) + 12345);
const MD5 = crypto.createHash('md5').update(BODY).digest('hex');

type Mode = 'normal' | 'drop-first' | 'drop-always' | 'ignore-range' | 'missing' | 'redirect' | 'no-length' | 'stall';
let mode: Mode = 'normal';
let requests: Array<{ url: string; range?: string }> = [];
let server: http.Server;
let base: string;
let dir: string;

function serveRange(req: http.IncomingMessage, res: http.ServerResponse): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m && mode !== 'ignore-range') {
    const start = Number(m[1]);
    if (start >= BODY.length) {
      res.writeHead(416, { 'content-range': `bytes */${BODY.length}` });
      res.end();
      return;
    }
    res.writeHead(206, { 'content-range': `bytes ${start}-${BODY.length - 1}/${BODY.length}`, 'content-length': BODY.length - start });
    res.end(BODY.subarray(start));
    return;
  }
  res.writeHead(200, mode === 'no-length' ? {} : { 'content-length': BODY.length });
  res.end(BODY);
}

function dropAfter(res: http.ServerResponse, bytes: number, start = 0): void {
  const headers: http.OutgoingHttpHeaders = { 'content-length': BODY.length - start };
  if (start > 0) headers['content-range'] = `bytes ${start}-${BODY.length - 1}/${BODY.length}`;
  res.writeHead(start > 0 ? 206 : 200, headers);
  res.write(BODY.subarray(start, start + bytes), () => setTimeout(() => res.socket?.destroy(), 20));
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', range: req.headers.range });
    if (mode === 'missing') {
      res.writeHead(404);
      res.end('not here');
      return;
    }
    if (mode === 'redirect' && req.url === '/old/data.bin') {
      res.writeHead(302, { location: '/data.bin' });
      res.end();
      return;
    }
    if (mode === 'stall') {
      res.writeHead(200, { 'content-length': BODY.length });
      res.write(BODY.subarray(0, 1000)); // and then nothing
      return;
    }
    const start = Number(/^bytes=(\d+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    if (mode === 'drop-always' || (mode === 'drop-first' && requests.length === 1)) {
      dropAfter(res, 1 << 20, start);
      return;
    }
    serveRange(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
});
beforeEach(() => {
  mode = 'normal';
  requests = [];
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-dl-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const quick = { retryDelayMs: 10, idleTimeoutMs: 5000 };

describe('download', () => {
  it('fetches the file, checks its md5 and shows progress in MiB', async () => {
    const bars: string[] = [];
    const dest = path.join(dir, 'data.bin');
    const r = await download(`${base}/data.bin`, dest, { ...quick, md5: MD5, progress: silentProgress(bars) });
    expect(r).toEqual({ bytes: BODY.length, resumedFrom: 0 });
    expect(fs.readFileSync(dest).equals(BODY)).toBe(true);
    expect(fs.existsSync(`${dest}.part`)).toBe(false);
    expect(bars).toEqual(['Downloading data.bin (MiB)']);
  });

  it('resumes an interrupted transfer with a Range request', async () => {
    mode = 'drop-first';
    const logs: string[] = [];
    const dest = path.join(dir, 'data.bin');
    const r = await download(`${base}/data.bin`, dest, { ...quick, md5: MD5, log: (l) => logs.push(l) });
    // the server sent 1 MiB before it hung up; the client asks for the rest of what it got
    expect(r.resumedFrom).toBeGreaterThan(0);
    expect(r.resumedFrom).toBeLessThanOrEqual(1 << 20);
    expect(requests).toEqual([{ url: '/data.bin' }, { url: '/data.bin', range: `bytes=${r.resumedFrom}-` }]);
    expect(fs.readFileSync(dest).equals(BODY)).toBe(true);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(/^Download of data\.bin interrupted \(.+\); resuming \(try 2 of 3\)$/);
  });

  it('keeps the partial file when every try fails, and a later run resumes it', async () => {
    mode = 'drop-always';
    const dest = path.join(dir, 'data.bin');
    const err = await download(`${base}/data.bin`, dest, { ...quick, attempts: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    const kept = fs.statSync(`${dest}.part`).size;
    expect(kept).toBeGreaterThan(1 << 20);
    expect(kept).toBeLessThanOrEqual(2 << 20);
    expect(fs.readFileSync(`${dest}.part`).equals(BODY.subarray(0, kept))).toBe(true);
    expect((err as Error).message).toMatch(
      new RegExp(`^download of ${base}/data\\.bin failed after 2 tries \\(.+\\); ${kept} bytes of ${BODY.length} are kept in ${dest}\\.part: run the command again to resume$`),
    );
    expect(fs.existsSync(dest)).toBe(false);

    mode = 'normal';
    requests = [];
    const r = await download(`${base}/data.bin`, dest, { ...quick, md5: MD5 });
    expect(requests).toEqual([{ url: '/data.bin', range: `bytes=${kept}-` }]);
    expect(r.resumedFrom).toBe(kept);
    expect(fs.readFileSync(dest).equals(BODY)).toBe(true);
  });

  it('starts over when the server ignores the range', async () => {
    const dest = path.join(dir, 'data.bin');
    fs.writeFileSync(`${dest}.part`, Buffer.alloc(1000, 7)); // wrong bytes: must not be kept
    mode = 'ignore-range';
    const r = await download(`${base}/data.bin`, dest, { ...quick, md5: MD5 });
    expect(requests).toEqual([{ url: '/data.bin', range: 'bytes=1000-' }]);
    expect(r.resumedFrom).toBe(0);
    expect(fs.readFileSync(dest).equals(BODY)).toBe(true);
  });

  it('finishes a partial file that is already complete (416)', async () => {
    const dest = path.join(dir, 'data.bin');
    fs.writeFileSync(`${dest}.part`, BODY);
    await download(`${base}/data.bin`, dest, { ...quick, md5: MD5 });
    expect(requests).toEqual([{ url: '/data.bin', range: `bytes=${BODY.length}-` }]);
    expect(fs.readFileSync(dest).equals(BODY)).toBe(true);
  });

  it('deletes a download whose md5 does not match', async () => {
    const dest = path.join(dir, 'data.bin');
    const wrong = '0'.repeat(32);
    await expect(download(`${base}/data.bin`, dest, { ...quick, md5: wrong })).rejects.toThrow(
      new UserError(`download of ${base}/data.bin is corrupt: md5 ${MD5}, expected ${wrong}; the download was deleted, run the command again to fetch it afresh`),
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('follows redirects, and accepts a body of unknown length', async () => {
    mode = 'redirect';
    await download(`${base}/old/data.bin`, path.join(dir, 'a.bin'), quick);
    expect(requests.map((r) => r.url)).toEqual(['/old/data.bin', '/data.bin']);
    mode = 'no-length';
    await download(`${base}/data.bin`, path.join(dir, 'b.bin'), { ...quick, md5: MD5 });
    expect(await md5File(path.join(dir, 'b.bin'))).toBe(MD5);
  });

  it('gives up at once on a missing file, and refuses other protocols', async () => {
    mode = 'missing';
    await expect(download(`${base}/data.bin`, path.join(dir, 'x.bin'), quick)).rejects.toThrow(new UserError(`download of ${base}/data.bin failed: HTTP 404 Not Found`));
    expect(requests).toHaveLength(1);
    expect(fs.readdirSync(dir)).toEqual([]);
    await expect(download('ftp://example.org/x', path.join(dir, 'x.bin'), quick)).rejects.toThrow('only http and https addresses are supported');
  });

  it('drops a connection that goes silent instead of waiting for ever', async () => {
    mode = 'stall';
    const dest = path.join(dir, 'data.bin');
    await expect(download(`${base}/data.bin`, dest, { ...quick, idleTimeoutMs: 300, attempts: 1 })).rejects.toThrow(
      `download of ${base}/data.bin failed after 1 tries (no data for 0.3 s); 1000 bytes of ${BODY.length} are kept in ${dest}.part: run the command again to resume`,
    );
  });

  it('says what to do when no server answers', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(download(`http://127.0.0.1:${port}/x.bin`, path.join(dir, 'x.bin'), { ...quick, attempts: 2 })).rejects.toThrow(
      new RegExp(`^download of http://127\\.0\\.0\\.1:${port}/x\\.bin failed after 2 tries \\(.*ECONNREFUSED.*\\); check the network, or pass --from with a copy of the file$`),
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('fetchCached downloads once into the cache folder', async () => {
    const logs: string[] = [];
    const remote = { file: 'cached.bin', url: `${base}/data.bin`, md5: MD5 };
    const f = await fetchCached(remote, path.join(dir, 'downloads'), { ...quick, log: (l) => logs.push(l) });
    expect(f).toBe(path.join(dir, 'downloads', 'cached.bin'));
    expect(await fetchCached(remote, path.join(dir, 'downloads'), quick)).toBe(f);
    expect(requests).toHaveLength(1);
    expect(logs).toEqual([`Downloading ${base}/data.bin to ${f}`]);
  });
});
