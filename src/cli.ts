import { Command, CommanderError } from 'commander';
import { isUserError } from './errors';
import { COMMANDS } from './commands';

/** Builds the commander program; every subcommand registers itself from src/commands. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('ssl')
    .description('Semi-supervised image classification experiments (RealMix, MixMatch and relatives) on TensorFlow.js')
    .option('--verbose', 'print stack traces and debugging detail', false)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ showGlobalOptions: true })
    .exitOverride();
  for (const register of COMMANDS) register(program);
  return program;
}

function wantsVerbose(argv: string[]): boolean {
  return argv.includes('--verbose') || process.env.SSL_VERBOSE === '1';
}

/**
 * The one error boundary: user mistakes print one line and exit 1; anything else is a bug and
 * prints its stack only with --verbose. Returns the exit code; never calls process.exit itself.
 */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander has already printed its message (or the help text)
      return e.exitCode;
    }
    const verbose = wantsVerbose(argv);
    if (isUserError(e)) {
      console.error(`ssl: ${e.message}`);
      if (verbose && e.stack) console.error(e.stack);
      return 1;
    }
    const err = e as Error;
    console.error(`ssl: internal error: ${err?.message ?? String(e)}${verbose ? '' : ' (run with --verbose for the stack trace)'}`);
    if (verbose && err?.stack) console.error(err.stack);
    return 1;
  }
}
