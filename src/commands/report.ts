import type { Command } from 'commander';
import { runReport } from '../report/report';

export function register(program: Command): void {
  program
    .command('report')
    .summary('mean ± std over seeds of every configuration, with learning curves')
    .description(
      'find every run below a folder, make stats/accuracy.json where it is missing or stale (extract-accuracy), ' +
        'and print one row per configuration (dataset, label count, algorithm and settings): the mean and sample ' +
        'standard deviation over seeds of last20, the number of seeds, and the published accuracy where known. ' +
        'Also writes report.md, report.csv, and learning curves as curves.svg and curves.png.',
    )
    .argument('<experiments-dir>', 'folder holding run directories (ssl train --train-dir, e.g. ./experiments)')
    .option('--out <dir>', 'where the report files go (default: <experiments-dir>/report)')
    .option('--tag <tag>', 'scalar tag of the test accuracy (default: accuracy_test, else accuracy)')
    .action(async (root: string, o: { out?: string; tag?: string }) => {
      await runReport({ root, out: o.out, tag: o.tag });
    });
}
