import type { Command } from 'commander';
import * as createDatasets from './create-datasets';
import * as createSplit from './create-split';
import * as demo from './demo';
import * as env from './env';
import * as extractAccuracy from './extract-accuracy';
import * as infer from './infer';
import * as train from './train';

/** Every registered subcommand. A command is listed here only once it works end to end. */
export const COMMANDS: Array<(program: Command) => void> = [
  env.register,
  createDatasets.register,
  createSplit.register,
  train.register,
  infer.register,
  extractAccuracy.register,
  demo.register,
];
