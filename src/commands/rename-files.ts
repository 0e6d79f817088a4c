import * as path from 'path';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { applyRenames, FileType, planRenames, RenamePlan } from '../data/rename-files';
import { intArg } from './parse';

export interface RenameFilesCommandOptions {
  targetDir: string;
  index: number;
  filetype: FileType;
  /** Text that marks folders to skip; false for --no-skip. */
  skip: string | false;
  dryRun: boolean;
}

function fileTypeArg(v: string): FileType {
  if (v !== 'png' && v !== 'jpg') throw new InvalidArgumentError('expected png or jpg.');
  return v;
}

export function runRenameFiles(o: RenameFilesCommandOptions, log: (line: string) => void = console.log): RenamePlan {
  const plan = planRenames({ dir: o.targetDir, start: o.index, filetype: o.filetype, skip: o.skip });
  const rel = (p: string) => path.relative(plan.dir, p);
  if (o.dryRun) for (const m of plan.moves) log(`${rel(m.from)} -> ${rel(m.to)}`);
  const renamed = o.dryRun ? 0 : applyRenames(plan);
  const extra = [
    plan.unchanged.length ? `${plan.unchanged.length} already named` : '',
    plan.skipped.length ? `${plan.skipped.length} skipped in folders named *${o.skip}*` : '',
  ].filter(Boolean);
  log(
    `${o.dryRun ? `Would rename ${plan.moves.length}` : `Renamed ${renamed}`} of ${plan.total} .${o.filetype} files under ${plan.dir}` +
      (extra.length ? ` (${extra.join(', ')})` : ''),
  );
  return plan;
}

export function register(program: Command): void {
  program
    .command('rename-files')
    .summary('rename images in class folders to <n>_<class>.<ext>')
    .description(
      "RealMix's rename_files: every *.<filetype> file under --target-dir (recursively, in sorted path order) is renamed in " +
        'its own folder to <number>_<class>.<filetype>, number = position + --index zero-padded to the digits of ' +
        '(file count + --index), class = its folder name without "-". Never overwrites a file: a taken name stops it ' +
        'before anything is renamed',
    )
    .requiredOption('-t, --target-dir <dir>', 'folder holding one sub-folder per class (required)')
    .option('-i, --index <n>', 'number of the first file', intArg(0), 0)
    .option('-f, --filetype <type>', 'png or jpg (the extension matched, case-sensitive)', fileTypeArg, 'png' as FileType)
    .option('--skip <text>', "files directly in a folder whose name contains <text> keep their names but use up a number, as the original does with 'all'", 'all')
    .option('--no-skip', 'rename the files of every folder')
    .option('--dry-run', 'print old -> new names and change nothing', false)
    .action((o: RenameFilesCommandOptions) => {
      runRenameFiles(o);
    });
}
