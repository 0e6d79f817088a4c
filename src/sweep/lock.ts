import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { UserError } from '../errors';

/**
 * One `ssl sweep` per sweep at a time: two would start the same runs twice. The lock file holds
 * `pid@host`; a lock left by a process that no longer exists (on this host) is taken over.
 */
export function acquireLock(stateDir: string): () => void {
  fs.mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, 'lock');
  const me = `${process.pid}@${os.hostname()}`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, me);
      fs.closeSync(fd);
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8') === me) fs.rmSync(file);
        } catch {
          /* already gone */
        }
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = fs.readFileSync(file, 'utf8').trim();
    const [pid, host] = holder.split('@');
    if (host === os.hostname() && !alive(Number(pid))) {
      fs.rmSync(file, { force: true });
      continue;
    }
    throw new UserError(`another ssl sweep (${holder}) is running this sweep; wait for it, or delete ${file} if it is gone`);
  }
  throw new UserError(`cannot take the lock ${file}; delete it if no ssl sweep is running`);
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
