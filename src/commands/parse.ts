import { InvalidArgumentError } from 'commander';

/** Option parsers for commander: a bad value becomes commander's one-line usage error. */
export function intArg(min = -Infinity) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v.trim())) throw new InvalidArgumentError('expected an integer.');
    const n = Number(v);
    if (n < min) throw new InvalidArgumentError(`must be at least ${min}.`);
    return n;
  };
}

export function floatArg(min = -Infinity) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number.');
    if (n < min) throw new InvalidArgumentError(`must be at least ${min}.`);
    return n;
  };
}

export function boolArg(v: string): boolean {
  const s = v.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  throw new InvalidArgumentError('expected true or false.');
}

export function kebab(snake: string): string {
  return snake.replace(/_/g, '-');
}
