/**
 * A mistake the user can fix: a missing file, a bad flag, a corrupt record.
 * The CLI's one error boundary (bin/ssl.ts) prints only `message` (one line, saying what is wrong
 * and what to do) and exits non-zero; anything else is a bug and gets a stack trace.
 */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
