import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { UserError } from '../src/errors';
import { acquireLock, LOCK_FILE, readLock, type LockOwner } from '../src/util/lock';

/**
 * The run-directory lock, with real processes: contenders started at the same instant (exactly
 * one wins), an owner killed with SIGKILL (its lock is taken over), many takers of one stale lock
 * at once (exactly one wins), and release on exit and on SIGTERM.
 */

let work: string;
let lockJs: string;
beforeAll(() => {
  // the children run the sources as they are, transpiled here: no build needed
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-lock-'));
  for (const rel of ['errors.ts', 'util/atomic-write.ts', 'util/lock.ts']) {
    const src = fs.readFileSync(path.join(__dirname, '..', 'src', rel), 'utf8');
    const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
    const dest = path.join(work, 'js', rel.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, out.outputText);
  }
  lockJs = path.join(work, 'js', 'util', 'lock.js');
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(work, 'run-'));
});
// children still running when a test fails would keep the run alive through their pipes
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
});

/**
 * A child that waits until `startAt` (so that contenders start together), tries the lock, prints
 * one JSON line, holds the lock `holdMs` (forever when -1) and releases it (or `exit` without
 * releasing: process.exit must release it).
 */
const CHILD = `
const fs = require('fs');
const [lockJs, dir, startAt, holdMs, mode, staleToken, goFile] = process.argv.slice(1);
if (mode === 'slow') {
  // pause right after reading the stale lock, until the test says go: a taker caught mid-takeover
  const read = fs.readFileSync;
  let paused = false;
  fs.readFileSync = function (p, ...rest) {
    const r = read.call(fs, p, ...rest);
    if (!paused && String(p).endsWith('/.lock') && String(r).includes(staleToken)) {
      paused = true;
      console.log(JSON.stringify({ paused: true }));
      while (!fs.existsSync(goFile)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
    return r;
  };
}
const { acquireLock } = require(lockJs);
while (Date.now() < Number(startAt)) {}
let lock;
try {
  lock = acquireLock(dir, 'training');
} catch (e) {
  console.log(JSON.stringify({ won: false, pid: process.pid, message: e.message, user: e.name === 'UserError' }));
  process.exit(0);
}
console.log(JSON.stringify({ won: true, pid: process.pid }));
if (mode === 'exit') process.exit(0);
if (Number(holdMs) < 0) setInterval(() => {}, 1000);
else setTimeout(() => lock.release(), Number(holdMs));
`;

interface Outcome {
  won: boolean;
  pid: number;
  message?: string;
  user?: boolean;
}

type Run = {
  child: ChildProcess;
  /** The answer: the first line that says whether the lock was won. */
  outcome: Promise<Outcome>;
  /** Resolves when a 'slow' child has paused after reading the stale lock. */
  paused: Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
};

function start(holdMs: number, startAt = Date.now(), mode = '', ...extra: string[]): Run {
  const child = spawn(process.execPath, ['-e', CHILD, lockJs, dir, String(startAt), String(holdMs), mode, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const lines = (): Array<Outcome & { paused?: boolean }> => out.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  const outcome = new Promise<Outcome>((resolve, reject) => {
    const check = () => {
      const o = lines().find((l) => 'won' in l);
      if (o) resolve(o);
    };
    child.stdout!.on('data', (d) => {
      out += d;
      check();
    });
    child.on('exit', () => {
      check();
      reject(new Error(`child ended without an answer: ${err}`));
    });
  });
  const paused = new Promise<void>((resolve) => child.stdout!.on('data', () => lines().some((l) => l.paused) && resolve()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, outcome, paused, exit };
}

/**
 * Starts `n` contenders together; once all have answered, the winners (holding until then, so a
 * slow starter still meets a held lock) are ended with SIGTERM, which releases.
 */
async function contend(n: number): Promise<Outcome[]> {
  const startAt = Date.now() + 600; // time for every child to load before the start
  const runs = Array.from({ length: n }, () => start(-1, startAt));
  const outcomes = await Promise.all(runs.map((r) => r.outcome));
  runs.forEach((r, k) => outcomes[k].won && r.child.kill('SIGTERM'));
  await Promise.all(runs.map((r) => r.exit));
  return outcomes;
}

function writeOwner(o: Partial<LockOwner>): void {
  const owner: LockOwner = { pid: 1, host: os.hostname(), started: '2020-01-01T00:00:00.000Z', what: 'training', token: 'abcdef0123456789', ...o };
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify(owner) + '\n');
}

describe('acquireLock in one process', () => {
  it('writes its owner into <dir>/.lock, refuses a second taker with one clear line, and releases', () => {
    const lock = acquireLock(dir, 'training');
    const owner = readLock(dir)!;
    expect(owner).toMatchObject({ pid: process.pid, host: os.hostname(), what: 'training' });
    expect(Date.parse(owner.started)).toBeGreaterThan(Date.now() - 60_000);
    let err: unknown;
    try {
      acquireLock(dir, 'training');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toBe(
      `run directory ${dir} is in use by pid ${process.pid} on host ${os.hostname()} (training in this very process, started ${owner.started}); ` +
        `wait for it or remove ${path.join(dir, LOCK_FILE)} if that process is gone`,
    );
    lock.release();
    lock.release();
    expect(fs.readdirSync(dir)).toEqual([]);
    acquireLock(dir, 'training').release();
  });

  it('creates the directory, and release leaves a lock that is no longer its own alone', () => {
    const sub = path.join(dir, 'a', 'b');
    const lock = acquireLock(sub, 'aug-copy', { noun: 'data directory' });
    writeOwner({ pid: process.pid, token: 'ffffffffffffffff' });
    fs.renameSync(path.join(dir, LOCK_FILE), path.join(sub, LOCK_FILE));
    lock.release();
    expect(readLock(sub)?.token).toBe('ffffffffffffffff');
  });

  it('never breaks the lock of another host, or of another pid namespace on this one', () => {
    writeOwner({ host: 'elsewhere.example', pid: 999999 });
    expect(() => acquireLock(dir, 'training')).toThrow(/is in use by pid 999999 on host elsewhere\.example \(training, started 2020-01-01T00:00:00\.000Z\)/);
    writeOwner({ pid: 999999, pidns: 'pid:[1]' });
    expect(() => acquireLock(dir, 'training')).toThrow(/is in use by pid 999999 on host/);
  });

  it('takes over a lock whose pid is gone, was reused by a later process, or dates from an earlier boot', () => {
    const dead = spawn(process.execPath, ['-e', '0']);
    return new Promise<void>((resolve) => dead.on('exit', resolve)).then(() => {
      for (const stale of [{ pid: dead.pid! }, { pid: process.ppid, procStart: '1' }, { pid: process.ppid, boot: 'another-boot' }]) {
        writeOwner(stale);
        const lock = acquireLock(dir, 'training');
        expect(readLock(dir)?.pid).toBe(process.pid);
        lock.release();
      }
      // where /proc tells start times, a live pid whose start time matches holds the lock
      if (fs.existsSync('/proc/self/stat')) {
        const stat = fs.readFileSync(`/proc/${process.ppid}/stat`, 'latin1');
        writeOwner({ pid: process.ppid, procStart: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] });
        expect(() => acquireLock(dir, 'training')).toThrow(new RegExp(`in use by pid ${process.ppid} on host`));
      }
    });
  });

  it('names an unreadable lock file and says what to do', () => {
    fs.writeFileSync(path.join(dir, LOCK_FILE), 'garbage');
    expect(() => acquireLock(dir, 'training')).toThrow(`run directory ${dir} has a lock file ${path.join(dir, LOCK_FILE)} that cannot be read; remove it if no ssl process is using ${dir}`);
  });

  it('clears claim files left by a taker that died mid-takeover', () => {
    fs.writeFileSync(path.join(dir, `${LOCK_FILE}.stale-0123456789abcdef`), '{}');
    acquireLock(dir, 'training').release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('acquireLock across processes', () => {
  it('of contenders started together, exactly one wins, and the others name it', async () => {
    for (let round = 0; round < 3; round++) {
      const outcomes = await contend(4);
      const winners = outcomes.filter((o) => o.won);
      expect(winners).toHaveLength(1);
      for (const o of outcomes.filter((x) => !x.won)) {
        expect(o.user).toBe(true);
        expect(o.message).toMatch(new RegExp(`^run directory .* is in use by pid ${winners[0].pid} on host `));
      }
      expect(fs.readdirSync(dir)).toEqual([]);
    }
  });

  it('an owner killed with SIGKILL leaves a stale lock, which the next run takes over', async () => {
    const owner = start(-1);
    expect((await owner.outcome).won).toBe(true);
    owner.child.kill('SIGKILL');
    await owner.exit;
    expect(readLock(dir)?.pid).toBe(owner.child.pid);
    const next = start(0);
    expect(await next.outcome).toEqual({ won: true, pid: next.child.pid });
    await next.exit;
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('of many takers of one stale lock at the same instant, exactly one wins', async () => {
    for (let round = 0; round < 3; round++) {
      const owner = start(-1);
      expect((await owner.outcome).won).toBe(true);
      owner.child.kill('SIGKILL');
      await owner.exit;
      const outcomes = await contend(6);
      expect(outcomes.filter((o) => o.won)).toHaveLength(1);
      expect(fs.readdirSync(dir)).toEqual([]);
    }
  });

  it('a taker caught between reading a stale lock and removing it does not remove the lock another has taken since', async () => {
    const owner = start(-1);
    expect((await owner.outcome).won).toBe(true);
    const staleToken = readLock(dir)!.token;
    owner.child.kill('SIGKILL');
    await owner.exit;
    const go = path.join(work, `go-${path.basename(dir)}`);
    const slow = start(-1, Date.now(), 'slow', staleToken, go);
    await slow.paused;
    const fast = start(-1);
    expect((await fast.outcome).won).toBe(true);
    fs.writeFileSync(go, '');
    const late = await slow.outcome;
    expect(late.won).toBe(false);
    expect(late.message).toMatch(new RegExp(`in use by pid ${fast.child.pid} on host `));
    expect(readLock(dir)?.pid).toBe(fast.child.pid);
    for (const r of [slow, fast]) r.child.kill('SIGTERM');
    await Promise.all([slow.exit, fast.exit]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('is released when its owner exits without releasing, and on SIGTERM, which still ends the owner', async () => {
    const exiting = start(-1, Date.now(), 'exit');
    expect((await exiting.outcome).won).toBe(true);
    expect(await exiting.exit).toEqual({ code: 0, signal: null });
    expect(fs.readdirSync(dir)).toEqual([]);

    const owner = start(-1);
    expect((await owner.outcome).won).toBe(true);
    owner.child.kill('SIGTERM');
    expect(await owner.exit).toEqual({ code: null, signal: 'SIGTERM' });
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
