import * as fs from 'fs';
import type { Interrupt } from './interrupt';
import type { PrepStep, SweepTask } from './plan';

/** What a launcher (local processes, Slurm) does for a sweep. */
export interface Launcher {
  /** Makes the missing splits, in order (an aug-copy after its split); throws UserError on a failure. */
  runPrep(steps: PrepStep[]): Promise<void>;
  /** Runs the tasks; resolves once each is done, failed for good, or stopped by Ctrl-C. */
  runTasks(tasks: SweepTask[]): Promise<TaskOutcome[]>;
}

export type TaskStatus = 'done' | 'failed' | 'interrupted';

export interface TaskOutcome {
  task: SweepTask;
  status: TaskStatus;
  /** Exit code of the last attempt, when it reported one. */
  code?: number | null;
  /** Why it failed, one line (from its log). */
  reason?: string;
  log: string;
  attempts: number;
}

export interface LauncherContext {
  /** How to run ssl itself: [node, path to the ssl entry script]. */
  ssl: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  stateDir: string;
  log: (line: string) => void;
  interrupt: Interrupt;
  /** Called as each task ends (progress, accuracy line). */
  onTaskEnd?: (o: TaskOutcome) => void;
}

/** The line of a log that best says why a command failed: its last `ssl:` error, else its last line. */
export function failureLine(logFile: string): string {
  let text = '';
  try {
    const fd = fs.openSync(logFile, 'r');
    const size = fs.fstatSync(fd).size;
    const len = Math.min(size, 64 * 1024);
    const buf = Buffer.alloc(len);
    fs.readSync(fd, buf, 0, len, size - len);
    fs.closeSync(fd);
    text = buf.toString('utf8');
  } catch {
    return 'no log';
  }
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const err = [...lines].reverse().find((l) => /^(ssl|error):/.test(l));
  return err ?? lines[lines.length - 1] ?? 'empty log';
}

/** A file name part for a task: `003-seed1-size250`. */
export function taskFileStem(t: SweepTask): string {
  const vals = Object.entries(t.values).map(([k, v]) => `${k}${v}`).join('-');
  return `${String(t.index).padStart(3, '0')}${vals ? `-${vals}` : ''}`;
}
