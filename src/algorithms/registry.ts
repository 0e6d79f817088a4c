import { UserError } from '../errors';
import { mixmatch } from './mixmatch';
import { supervised } from './supervised';
import type { Algorithm } from './types';

/** Every --algo. A test checks that each algorithm file is registered here. */
export const ALGORITHMS: Algorithm[] = [mixmatch, supervised];

export function getAlgorithm(name: string): Algorithm {
  const a = ALGORITHMS.find((x) => x.name === name);
  if (!a) throw new UserError(`unknown --algo '${name}'; valid: ${ALGORITHMS.map((x) => x.name).join(', ')}`);
  return a;
}
