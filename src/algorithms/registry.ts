import { UserError } from '../errors';
import { fixmatch } from './fixmatch';
import { ict } from './ict';
import { meanTeacher } from './mean-teacher';
import { mixmatch } from './mixmatch';
import { mixupSsl } from './mixup';
import { piModel } from './pi-model';
import { pseudoLabel } from './pseudo-label';
import { realmix } from './realmix';
import { supervised } from './supervised';
import { supervisedMixup } from './supervised-mixup';
import { temporalEnsembling } from './temporal-ensembling';
import type { Algorithm } from './types';
import { vat } from './vat';

/** Every --algo. A test checks that each algorithm file is registered here. */
export const ALGORITHMS: Algorithm[] = [
  mixmatch,
  realmix,
  fixmatch,
  ict,
  meanTeacher,
  piModel,
  pseudoLabel,
  temporalEnsembling,
  vat,
  mixupSsl,
  supervised,
  supervisedMixup,
];

export function getAlgorithm(name: string): Algorithm {
  const a = ALGORITHMS.find((x) => x.name === name);
  if (!a) throw new UserError(`unknown --algo '${name}'; valid: ${ALGORITHMS.map((x) => x.name).join(', ')}`);
  return a;
}
