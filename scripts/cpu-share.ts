import * as os from 'os';

/** Machine CPU time, idle time, and this process's CPU time (all in ms). */
export interface CpuSample {
  idle: number;
  total: number;
  own: number;
}

export function cpuSample(): CpuSample {
  let idle = 0;
  let total = 0;
  for (const c of os.cpus()) {
    idle += c.times.idle;
    total += c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
  }
  // os.cpus() times are summed over cores; cpuUsage covers all threads of this process (workers too)
  const u = process.cpuUsage();
  return { idle, total, own: (u.user + u.system) / 1000 };
}

/** Between two samples: the machine's busy share, this process's share, and what other processes took. */
export function cpuShares(a: CpuSample, b: CpuSample): { busy: number; own: number; others: number } {
  const span = Math.max(1, b.total - a.total);
  const busy = 1 - (b.idle - a.idle) / span;
  const own = (b.own - a.own) / span;
  return { busy, own, others: Math.max(0, busy - own) };
}
