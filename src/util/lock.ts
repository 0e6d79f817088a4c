import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError } from '../errors';
import { ensureDir, toWriteError } from './atomic-write';

/**
 * An exclusive lock on a directory, so that two processes started on the same run directory do
 * not both write to it. The lock is the file `<dir>/.lock`, holding its owner as one line of JSON:
 * pid, host, start time, what it is doing, and a token unique to this acquisition.
 *
 * - Taking it: the owner line is written to a private file that is then hard-linked to `.lock`;
 *   link refuses an existing name, so exactly one contender wins, and `.lock` never exists
 *   half-written. (File systems without hard links fall back to an O_EXCL create.)
 * - Releasing it: release(), or process exit, or SIGINT/SIGTERM/SIGHUP when nothing else handles
 *   them; only a `.lock` holding our own token is removed.
 * - A lock whose owner died without releasing it (SIGKILL, power cut) is stale and is taken over:
 *   on the owner's own host when its pid is gone, or has been reused by a process that started at
 *   another time (Linux /proc start time). A lock from another host is never broken
 *   automatically, since its owner cannot be checked from here: the error says to remove `.lock`.
 * - Taking over is race-free among any number of takers: removing a stale `.lock` needs the
 *   claim file `.lock.stale-<its token>`, itself taken like a lock (and taken over the same way if
 *   its taker died), and the taker checks under the claim that `.lock` still holds that token.
 */

export const LOCK_FILE = '.lock';

export interface LockOwner {
  pid: number;
  host: string;
  /** When the lock was taken, ISO 8601. */
  started: string;
  /** What the owner is doing, for the message others see ("training", "aug-copy"). */
  what: string;
  token: string;
  /** The owner's start time in clock ticks since boot (Linux), to tell a reused pid from the owner. */
  procStart?: string;
  /** Linux boot id: a lock from an earlier boot of this host is stale whatever its pid. */
  boot?: string;
  /** Linux pid namespace: a pid from another container on this host cannot be checked from here. */
  pidns?: string;
}

export interface Lock {
  readonly dir: string;
  readonly path: string;
  readonly owner: LockOwner;
  /** Removes the lock if it is still ours; safe to call more than once. */
  release(): void;
}

export interface LockOptions {
  /** How the directory is named in the error ("run directory"). */
  noun?: string;
  /** How long to wait for another process that is taking over a stale lock at the same moment. */
  settleMs?: number;
}

/** /proc/<pid>/stat field 22, or undefined where there is no /proc. */
function procStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // the command name (field 2) may hold spaces and parentheses: count fields after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function readText(file: string, link = false): string | undefined {
  try {
    return (link ? fs.readlinkSync(file) : fs.readFileSync(file, 'latin1')).trim();
  } catch {
    return undefined;
  }
}

const BOOT_ID = readText('/proc/sys/kernel/random/boot_id');
const PID_NS = readText('/proc/self/ns/pid', true);

function newOwner(what: string): LockOwner {
  const owner: LockOwner = {
    pid: process.pid,
    host: os.hostname(),
    started: new Date().toISOString(),
    what,
    token: randomBytes(12).toString('hex'),
  };
  const procStart = procStartTime(process.pid);
  if (procStart !== undefined) owner.procStart = procStart;
  if (BOOT_ID !== undefined) owner.boot = BOOT_ID;
  if (PID_NS !== undefined) owner.pidns = PID_NS;
  return owner;
}

/**
 * Whether the owner may still be running. A lock of another host, or of another pid namespace
 * (container) of this one, always may: its pid means nothing here.
 */
export function ownerAlive(o: LockOwner): boolean {
  if (o.host !== os.hostname()) return true;
  if (o.pidns !== undefined && PID_NS !== undefined && o.pidns !== PID_NS) return true;
  if (o.boot !== undefined && BOOT_ID !== undefined && o.boot !== BOOT_ID) return false;
  try {
    process.kill(o.pid, 0);
  } catch (e) {
    // EPERM: alive, but another user's
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  if (o.procStart !== undefined) {
    const now = procStartTime(o.pid);
    if (now !== undefined && now !== o.procStart) return false;
  }
  return true;
}

function parseOwner(text: string): LockOwner | null {
  try {
    const o = JSON.parse(text) as Partial<LockOwner> | null;
    if (
      o && typeof o === 'object' && Number.isSafeInteger(o.pid) && (o.pid as number) > 0 &&
      typeof o.host === 'string' && typeof o.started === 'string' && typeof o.what === 'string' &&
      typeof o.token === 'string' && /^[0-9a-f]{8,64}$/.test(o.token) &&
      [o.procStart, o.boot, o.pidns].every((v) => v === undefined || typeof v === 'string')
    ) {
      return o as LockOwner;
    }
  } catch {
    // not JSON: reported as unreadable below
  }
  return null;
}

type Seen = { state: 'gone' } | { state: 'unreadable' } | { state: 'owned'; owner: LockOwner };

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** The owner in `file`. An unparsable file is re-read for a moment: the O_EXCL fallback writes after creating. */
function readOwner(file: string): Seen {
  for (let attempt = 0; ; attempt++) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'gone' };
      throw e;
    }
    const owner = parseOwner(text);
    if (owner) return { state: 'owned', owner };
    if (attempt >= 20) return { state: 'unreadable' };
    sleep(10);
  }
}

const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

/** Creates `file` holding `owner` if no such file exists; false if one does. */
function createExclusive(file: string, owner: LockOwner): boolean {
  const line = JSON.stringify(owner) + '\n';
  const tmp = `${file}.${owner.token}.tmp`;
  fs.writeFileSync(tmp, line, { flag: 'wx' });
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (!code || !NO_HARD_LINKS.has(code)) throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    fs.writeSync(fd, line);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** Removes `file` only if it still holds `token`. */
function removeIfOwned(file: string, token: string): void {
  const seen = readOwner(file);
  if (seen.state === 'owned' && seen.owner.token === token) fs.rmSync(file, { force: true });
}

type Attempt = { held: true } | { held: false; owner: LockOwner | null };

/** Takes `file` for `owner`, taking over a stale one; `depth` bounds claims on claims. */
function tryTake(file: string, owner: LockOwner, settleMs: number, depth = 0): Attempt {
  const deadline = Date.now() + settleMs;
  for (;;) {
    if (createExclusive(file, owner)) return { held: true };
    const seen = readOwner(file);
    if (seen.state === 'gone') {
      // released between our create and our read: try again, unless others keep winning
      if (Date.now() >= deadline) return { held: false, owner: null };
      continue;
    }
    if (seen.state === 'unreadable') return { held: false, owner: null };
    const current = seen.owner;
    if (ownerAlive(current) || depth >= 4) return { held: false, owner: current };
    const claimPath = `${file}.stale-${current.token}`;
    const claimer: LockOwner = { ...owner, token: randomBytes(12).toString('hex') };
    const claim = tryTake(claimPath, claimer, settleMs, depth + 1);
    if (claim.held) {
      try {
        // under the claim nobody else removes this instance, so check-then-remove is safe
        removeIfOwned(file, current.token);
      } finally {
        removeIfOwned(claimPath, claimer.token);
      }
      continue;
    }
    // a live process is taking this stale lock over right now: see what it leaves
    if (Date.now() >= deadline) return { held: false, owner: claim.owner ?? current };
    sleep(5);
  }
}

/** Claim files left by takers that died mid-takeover; harmless, and removed once we hold the lock. */
function removeLeftoverClaims(dir: string): void {
  try {
    for (const name of fs.readdirSync(dir)) {
      // (a .tmp is a claim being made by a live taker this instant; it removes its own)
      if (name.startsWith(`${LOCK_FILE}.stale-`) && !name.endsWith('.tmp')) fs.rmSync(path.join(dir, name), { force: true });
    }
  } catch {
    // only tidying
  }
}

// ---------------------------------------------------------------------------------------------
// Release on exit and on signals, with one set of handlers for every lock this process holds.

const held = new Set<HeldLock>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function releaseAll(): void {
  for (const l of Array.from(held)) l.release();
}

function onSignal(signal: NodeJS.Signals): void {
  // Someone else (train's graceful stop) handles this signal and will exit in its own time,
  // when the exit handler releases; otherwise do what the default action would, lock released.
  if (process.listenerCount(signal) > 1) return;
  releaseAll();
  uninstall();
  process.kill(process.pid, signal);
}

let installed = false;
function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', releaseAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', releaseAll);
  for (const s of SIGNALS) process.off(s, onSignal);
}

class HeldLock implements Lock {
  private released = false;

  constructor(readonly dir: string, readonly path: string, readonly owner: LockOwner) {}

  release(): void {
    if (this.released) return;
    this.released = true;
    held.delete(this);
    if (held.size === 0) uninstall();
    try {
      removeIfOwned(this.path, this.owner.token);
    } catch {
      // a directory gone or turned read-only: nothing of ours is left to clean
    }
  }
}

/**
 * Takes the lock on `dir` (created if missing) for this process, or throws a UserError naming
 * the process that holds it.
 */
export function acquireLock(dir: string, what: string, opts: LockOptions = {}): Lock {
  const file = path.join(dir, LOCK_FILE);
  const owner = newOwner(what);
  let attempt: Attempt;
  try {
    ensureDir(dir);
    attempt = tryTake(file, owner, opts.settleMs ?? 2000);
  } catch (e) {
    throw toWriteError(e, file);
  }
  const noun = opts.noun ?? 'run directory';
  if (!attempt.held) {
    const o = attempt.owner;
    if (!o) {
      throw new UserError(`${noun} ${dir} has a lock file ${file} that cannot be read; remove it if no ssl process is using ${dir}`);
    }
    const self = o.pid === process.pid && o.host === owner.host ? ' in this very process' : '';
    throw new UserError(
      `${noun} ${dir} is in use by pid ${o.pid} on host ${o.host} (${o.what}${self}, started ${o.started}); ` +
        `wait for it or remove ${file} if that process is gone`,
    );
  }
  removeLeftoverClaims(dir);
  const lock = new HeldLock(dir, file, owner);
  held.add(lock);
  install();
  return lock;
}

/** The owner of the lock on `dir`, or null when it is not locked (or the lock is unreadable). */
export function readLock(dir: string): LockOwner | null {
  const seen = readOwner(path.join(dir, LOCK_FILE));
  return seen.state === 'owned' ? seen.owner : null;
}
