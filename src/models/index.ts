import { UserError } from '../errors';
import { Model } from './layers';
import { defaultScales, resnet } from './resnet';
import { teCnn } from './te-cnn';

export const ARCHS = ['resnet', 'te_cnn'] as const;
export type Arch = (typeof ARCHS)[number];

export interface ArchOptions {
  arch: string;
  nclass: number;
  inputShape: [number, number, number];
  filters: number;
  scales: number;
  repeat: number;
}

export function buildModel(o: ArchOptions): Model {
  switch (o.arch) {
    case 'resnet':
      return resnet({ ...o, scales: o.scales > 0 ? o.scales : defaultScales(o.inputShape[1]) });
    case 'te_cnn':
      return teCnn({ nclass: o.nclass, inputShape: o.inputShape });
    default:
      throw new UserError(`unknown --arch '${o.arch}'; valid: ${ARCHS.join(', ')}`);
  }
}

/** The scales a resnet will use (0 resolves to the input-size default), for run names. */
export function resolvedScales(o: Pick<ArchOptions, 'scales' | 'inputShape'>): number {
  return o.scales > 0 ? o.scales : defaultScales(o.inputShape[1]);
}
