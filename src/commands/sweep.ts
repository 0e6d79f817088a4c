import * as path from 'path';
import { Command, Option } from 'commander';
import { UserError } from '../errors';
import { parseIntList, GridAxes } from '../sweep/grid';
import { runSweep, SweepOptions } from '../sweep/sweep';
import { intArg } from './parse';

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** How to start ssl itself for each run: this node and this entry script. */
function sslCommand(): string[] {
  const script = process.argv[1];
  if (!script) throw new UserError('cannot tell how ssl was started; run it as `ssl` or `node dist/bin/ssl.js`');
  return [process.execPath, ...process.execArgv, path.resolve(script)];
}

export function register(program: Command): void {
  program
    .command('sweep')
    .summary('run a command for every seed and label count, locally or on Slurm')
    .description(
      'run an `ssl train` command for every combination of seeds, label counts and validation sizes: ' +
        '{seed}, {size} and {valid} in the command take the values of --seeds, --sizes and --valid. ' +
        'Missing splits are made first (create-split; aug-copy for <name>_aug<N> datasets), once each. ' +
        'Finished runs are skipped and unfinished ones resume, so re-running the same sweep continues it; ' +
        'Ctrl-C stops it with every run resumable.',
    )
    .argument('<command...>', "the ssl command after '--', e.g. -- train --algo mixmatch --dataset cifar10.{seed}@{size}-{valid}")
    .option('--seeds <list>', 'values of {seed}: numbers and ranges, e.g. 1-5 or 1,3,5')
    .option('--sizes <list>', 'values of {size} (labelled examples), e.g. 250,4000')
    .option('--valid <list>', 'values of {valid} (validation examples), e.g. 5000')
    .addOption(new Option('--launcher <name>', 'where runs go: local processes, or one Slurm job array').choices(['local', 'slurm']).default('local'))
    .option('--jobs <n>', 'local: runs at once (default: one per --gpus device, else 1); slurm: most array tasks running at once', intArg(1))
    .option('--gpus <list>', 'local: GPU ids, e.g. 0,1; each concurrent run gets one (CUDA_VISIBLE_DEVICES)')
    .option('--dry-run', 'print the commands (missing splits first), one per line, and run nothing', false)
    .option('--copy-augment <name>', 'aug-copy --augment for <name>_aug<N> datasets (default: aug-copy\'s)')
    .option('--partition <name>', 'slurm: partition (#SBATCH --partition)')
    .option('--time <limit>', 'slurm: time limit per task, e.g. 24:00:00 (#SBATCH --time)')
    .option('--gpus-per-task <n>', 'slurm: GPUs per array task (#SBATCH --gres=gpu:<n>)', intArg(0))
    .option('--sbatch <option>', 'slurm: one more #SBATCH line, e.g. --sbatch=--mem=16G (repeatable)', collect, [])
    .option('--max-retries <n>', 'slurm: resubmit a failed or pre-empted task at most this many times', intArg(0), 3)
    .option('--poll <seconds>', 'slurm: seconds between squeue checks', intArg(1), 15)
    .action(async (command: string[], o: Record<string, unknown>) => {
      await runSweep(sweepOptionsFrom(command, o));
    });
}

/** Typed options from commander's; refuses options that do not fit the launcher. */
export function sweepOptionsFrom(command: string[], o: Record<string, unknown>): SweepOptions {
  const launcher = o.launcher as 'local' | 'slurm';
  const axes: GridAxes = {};
  if (o.seeds !== undefined) axes.seed = parseIntList(String(o.seeds), '--seeds');
  if (o.sizes !== undefined) axes.size = parseIntList(String(o.sizes), '--sizes');
  if (o.valid !== undefined) axes.valid = parseIntList(String(o.valid), '--valid');
  const slurmOnly: Array<[string, unknown]> = [
    ['--partition', o.partition],
    ['--time', o.time],
    ['--gpus-per-task', o.gpusPerTask],
    ['--sbatch', (o.sbatch as string[]).length ? o.sbatch : undefined],
  ];
  if (launcher !== 'slurm') {
    const given = slurmOnly.find(([, v]) => v !== undefined);
    if (given) throw new UserError(`${given[0]} is a Slurm option; add --launcher slurm (or drop it)`);
  }
  let gpus: string[] | undefined;
  if (o.gpus !== undefined) {
    if (launcher === 'slurm') throw new UserError('--gpus is for --launcher local; with Slurm ask for devices with --gpus-per-task');
    gpus = String(o.gpus)
      .split(',')
      .map((g) => g.trim())
      .filter((g) => g !== '');
    if (gpus.length === 0) throw new UserError(`--gpus '${o.gpus}' names no device; give ids such as 0,1`);
  }
  return {
    template: command,
    axes,
    launcher,
    jobs: o.jobs as number | undefined,
    gpus,
    dryRun: Boolean(o.dryRun),
    copyAugment: o.copyAugment as string | undefined,
    slurm: {
      partition: o.partition as string | undefined,
      time: o.time as string | undefined,
      gpusPerTask: o.gpusPerTask as number | undefined,
      sbatchLines: o.sbatch as string[],
      maxRetries: o.maxRetries as number,
      pollSeconds: o.poll as number,
    },
    ssl: sslCommand(),
  };
}
