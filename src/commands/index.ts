import type { Command } from 'commander';
import * as augCopy from './aug-copy';
import * as createDatasets from './create-datasets';
import * as checkSplit from './check-split';
import * as createSplit from './create-split';
import * as demo from './demo';
import * as env from './env';
import * as extractAccuracy from './extract-accuracy';
import * as filter from './filter';
import * as infer from './infer';
import * as inspect from './inspect';
import * as renameFiles from './rename-files';
import * as report from './report';
import * as sweep from './sweep';
import * as train from './train';

/** Every registered subcommand. A command is listed here only once it works end to end. */
export const COMMANDS: Array<(program: Command) => void> = [
  env.register,
  createDatasets.register,
  createSplit.register,
  filter.register,
  inspect.register,
  checkSplit.register,
  renameFiles.register,
  augCopy.register,
  train.register,
  infer.register,
  extractAccuracy.register,
  sweep.register,
  report.register,
  demo.register,
];
