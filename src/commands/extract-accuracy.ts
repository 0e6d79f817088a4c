import type { Command } from 'commander';
import { DEFAULT_ACCURACY_TAGS, extractAccuracy, formatStatsJson } from '../train/extract-accuracy';

export interface ExtractAccuracyOptions {
  runDir: string;
  tag?: string;
}

export function runExtractAccuracy(opts: ExtractAccuracyOptions, log: (line: string) => void = console.log): void {
  const r = extractAccuracy(opts.runDir, { tag: opts.tag });
  log(formatStatsJson(r.accuracy));
  log(`Saved: ${r.path}`);
}

export function register(program: Command): void {
  program
    .command('extract-accuracy')
    .summary('medians of the last test accuracies')
    .description('median test accuracy over the last 1/10/20/50 evaluations of a run, saved as <run-dir>/stats/accuracy.json')
    .argument('<run-dir>', 'run directory, e.g. experiments/mnist.1@100-1000/MixMatch_...; event files are read from <run-dir>/tf/')
    .option('--tag <tag>', `scalar tag of the test accuracy (default: ${DEFAULT_ACCURACY_TAGS.join(', else ')}, whichever the files hold)`)
    .action((runDir: string, o: { tag?: string }) => {
      runExtractAccuracy({ runDir, tag: o.tag });
    });
}
