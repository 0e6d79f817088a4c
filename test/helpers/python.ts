import { spawnSync } from 'child_process';

/**
 * Runs a python3 script (numpy and scipy are available in CI) to write fixtures in the genuine
 * formats or to read our output back; returns its stdout. Arguments reach it as sys.argv[1:].
 */
export function python(script: string, ...args: string[]): string {
  const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python3 failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}
