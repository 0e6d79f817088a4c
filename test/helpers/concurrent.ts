import { spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { isTempPath } from '../../src/util/atomic-write';

/**
 * The README's parallel shell loops (`for seed in …; do ssl <command> … & done; wait`), as a test
 * harness: N CLI invocations at once over one data root must give exactly the files that the same
 * invocations run one after another give, and a reader looking at the outputs all along must never
 * see a half-written file.
 *
 * To cover another command (aug-copy, train), describe it as a ParallelCase: how to prepare a data
 * root, the invocations, which directories hold the outputs, and, for files that legitimately
 * grow while being written (TensorBoard event files), an 'append' policy; see concurrency.test.ts.
 */

/** How a reader may see a file while the writers run. */
export type FilePolicy =
  /** every look sees the final content (written to a temporary name, then renamed): the default */
  | 'whole'
  /** every look sees a prefix of the final content made of whole records (append-only streams) */
  | 'append'
  /** not checked (logs, files rewritten on purpose) */
  | 'ignore';

export interface ParallelCase {
  /** Makes a fresh data root (base datasets and whatever the jobs read). */
  prepare(root: string): void | Promise<void>;
  /** The CLI arguments of each invocation, for a given data root (one per seed, say). */
  jobs(root: string): string[][];
  /** Directories (relative to the root) whose files must come out the same either way. */
  outputs: string[];
  /** Default 'whole' for every file. */
  policy?: (file: string) => FilePolicy;
  /**
   * Extra check of what a reader sees (e.g. a .tfrecord reads to the end); throw if it is not whole.
   * `bytes` is one look at the file.
   */
  validate?: (file: string, bytes: Buffer) => void;
  /** Files (relative to an output directory) whose content may differ run to run, e.g. wall-clock times. */
  volatile?: (file: string) => boolean;
  env?: Record<string, string>;
}

export interface RunResult {
  args: string[];
  code: number | null;
  stderr: string;
}

/** Runs `cli` once per job, all at once; resolves when every one has ended. */
export function runTogether(cli: string, jobs: string[][], env: Record<string, string> = {}): Promise<RunResult[]> {
  return Promise.all(
    jobs.map(
      (args) =>
        new Promise<RunResult>((resolve) => {
          const p = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
          let stderr = '';
          p.stderr!.on('data', (d) => (stderr += d));
          p.on('close', (code) => resolve({ args, code, stderr }));
        }),
    ),
  );
}

/** Runs `cli` once per job, one after another. */
export async function runOneByOne(cli: string, jobs: string[][], env: Record<string, string> = {}): Promise<RunResult[]> {
  const out: RunResult[] = [];
  for (const job of jobs) out.push(...(await runTogether(cli, [job], env)));
  return out;
}

interface Look {
  size: number;
  sha: string;
}

export interface WatchReport {
  /** Looks taken at files (each a whole read of one file). */
  looks: number;
  /** Files seen, with every distinct content seen. */
  seen: Map<string, Look[]>;
  /** What a reader saw that it must not have: a file failing `validate`. */
  problems: string[];
}

export interface Watcher {
  stop(): Promise<WatchReport>;
}

const sha = (b: Uint8Array): string => createHash('sha1').update(b).digest('hex');

/**
 * Reads every file under `dirs` again and again (temporary files aside) until stopped, as a
 * concurrent reader would, remembering each distinct content and checking it with `validate`.
 */
export function watch(dirs: string[], validate?: (file: string, bytes: Buffer) => void): Watcher {
  const report: WatchReport = { looks: 0, seen: new Map(), problems: [] };
  let running = true;
  const lookOnce = (): void => {
    for (const dir of dirs) {
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue; // not made yet
      }
      for (const name of names) {
        const file = path.join(dir, name);
        if (isTempPath(file)) continue;
        let bytes: Buffer;
        try {
          bytes = fs.readFileSync(file);
        } catch {
          continue; // replaced between listing and reading
        }
        report.looks++;
        const look = { size: bytes.length, sha: sha(bytes) };
        const looks = report.seen.get(file) ?? [];
        if (!looks.some((l) => l.sha === look.sha)) {
          looks.push(look);
          report.seen.set(file, looks);
          try {
            validate?.(file, bytes);
          } catch (e) {
            if (report.problems.length < 10) report.problems.push(`${file} (${bytes.length} bytes): ${(e as Error).message}`);
          }
        }
      }
    }
  };
  const done = new Promise<void>((resolve) => {
    const loop = (): void => {
      lookOnce();
      if (running) setImmediate(loop);
      else resolve();
    };
    loop();
  });
  return {
    async stop() {
      running = false;
      await done;
      lookOnce();
      return report;
    },
  };
}

/** What the looks show that readers must never see, judged against each file's final content. */
export function halfWritten(report: WatchReport, policy: (file: string) => FilePolicy = () => 'whole'): string[] {
  const out = [...report.problems];
  for (const [file, looks] of report.seen) {
    const p = policy(file);
    if (p === 'ignore') continue;
    let final: Buffer;
    try {
      final = fs.readFileSync(file);
    } catch {
      out.push(`${file}: seen, then gone`);
      continue;
    }
    for (const l of looks) {
      const ok = p === 'whole' ? l.sha === sha(final) : l.size <= final.length && l.sha === sha(final.subarray(0, l.size));
      if (!ok) out.push(`${file}: a reader saw ${l.size} bytes that are not ${p === 'whole' ? 'the finished file' : 'a prefix of it'} (${final.length} bytes)`);
    }
  }
  return out;
}

/** Every file under `dir` (recursively), relative to it, sorted. */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)))
    .sort();
}

export interface ParallelReport {
  together: RunResult[];
  oneByOne: RunResult[];
  /** Files compared between the two roots. */
  files: string[];
  /** Differences: missing on one side, or different bytes. */
  differences: string[];
  /** What concurrent readers saw that they must not have. */
  halfWritten: string[];
  looks: number;
}

/**
 * Runs the case's jobs all at once in one fresh root (with a reader watching the outputs) and one
 * after another in another, and compares.
 */
export async function runParallelCase(cli: string, workDir: string, c: ParallelCase): Promise<ParallelReport> {
  const [rootTogether, rootOneByOne] = ['together', 'one-by-one'].map((n) => path.join(workDir, n));
  for (const r of [rootTogether, rootOneByOne]) {
    fs.mkdirSync(r, { recursive: true });
    await c.prepare(r);
  }
  const watcher = watch(c.outputs.map((o) => path.join(rootTogether, o)), c.validate);
  const together = await runTogether(cli, c.jobs(rootTogether), c.env);
  const report = await watcher.stop();
  const oneByOne = await runOneByOne(cli, c.jobs(rootOneByOne), c.env);

  const differences: string[] = [];
  const files: string[] = [];
  for (const o of c.outputs) {
    const a = listFiles(path.join(rootTogether, o));
    const b = listFiles(path.join(rootOneByOne, o));
    for (const f of new Set([...a, ...b])) {
      const rel = path.join(o, f);
      files.push(rel);
      if (isTempPath(f)) {
        differences.push(`${rel}: a temporary file was left behind`);
      } else if (!a.includes(f) || !b.includes(f)) {
        differences.push(`${rel}: only in the ${a.includes(f) ? 'parallel' : 'serial'} run`);
      } else if (!c.volatile?.(rel) && !fs.readFileSync(path.join(rootTogether, rel)).equals(fs.readFileSync(path.join(rootOneByOne, rel)))) {
        differences.push(`${rel}: different bytes`);
      }
    }
  }
  return { together, oneByOne, files, differences, halfWritten: halfWritten(report, c.policy), looks: report.looks };
}
