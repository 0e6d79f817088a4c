import { UserError } from '../errors';
import { cnn13 } from './cnn13';
import { convnet } from './convnet';
import { Model } from './layers';
import { defaultScales, resnet } from './resnet';
import { teCnn } from './te-cnn';

/** --arch values: the originals' resnet (WRN-28-k), cnn13 and convnet, and the small MNIST CNN. */
export const ARCHS = ['resnet', 'cnn13', 'convnet', 'te_cnn'] as const;
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
  const scales = resolvedScales(o);
  switch (o.arch) {
    case 'resnet':
      return resnet({ ...o, scales });
    case 'cnn13':
      return cnn13({ nclass: o.nclass, inputShape: o.inputShape, filters: o.filters, scales });
    case 'convnet':
      return convnet({ nclass: o.nclass, inputShape: o.inputShape, filters: o.filters, scales });
    case 'te_cnn':
      return teCnn({ nclass: o.nclass, inputShape: o.inputShape });
    default:
      throw new UserError(`unknown --arch '${o.arch}'; valid: ${ARCHS.join(', ')}`);
  }
}

/** The scales a model will use (0 resolves to the input-size default, as the originals), for run names. */
export function resolvedScales(o: Pick<ArchOptions, 'scales' | 'inputShape'>): number {
  return o.scales > 0 ? o.scales : defaultScales(o.inputShape[1]);
}
