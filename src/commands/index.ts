import type { Command } from 'commander';

/** Every registered subcommand. A command is listed here only once it works end to end. */
export const COMMANDS: Array<(program: Command) => void> = [];
