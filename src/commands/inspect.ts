import type { Command } from 'commander';
import { formatInspect, inspectTarget, InspectReport, SAMPLE_LABELS } from '../data/inspect';
import { dataRoot } from '../data/paths';

export interface InspectCommandOptions {
  target: string;
  json: boolean;
  dataDir?: string;
}

export async function runInspect(o: InspectCommandOptions, log: (line: string) => void = console.log): Promise<InspectReport> {
  const r = await inspectTarget(dataRoot(o.dataDir), o.target);
  if (o.json) log(JSON.stringify(r, null, 2));
  else for (const line of formatInspect(r)) log(line);
  return r;
}

export function register(program: Command): void {
  program
    .command('inspect')
    .summary('record count, image shapes and class counts of a file or dataset')
    .description(
      `what a TFRecord file or dataset holds: records, image shapes and encodings (from the image headers), records per ` +
        `class (also as a percentage of the largest class, as the original inspect_dataset prints them) and the first ` +
        `${SAMPLE_LABELS} labels; records that are not image/label Examples are described by their features`,
    )
    .argument(
      '<target>',
      'a .tfrecord file; a base dataset (cifar10: its -train, -test, -extra, -unlabeled and -unlabel files); a split ' +
        '(cifar10.1@250: labelled, unlabelled, test); or a training dataset (cifar10.1@250-5000: labelled, validation, unlabelled, test)',
    )
    .option('--json', 'print the report as JSON', false)
    .option('--data-dir <dir>', 'data root (default: $ML_DATA, else ./data)')
    .action(async (target: string, o: Omit<InspectCommandOptions, 'target'>) => {
      await runInspect({ ...o, target });
    });
}
