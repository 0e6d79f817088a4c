import type { HParamValue } from '../algorithms/types';
import { pyFloat } from '../util/python-float';


export function pyValue(v: HParamValue, type: 'float' | 'int' | 'string' | 'bool'): string {
  if (type === 'float') return pyFloat(Number(v));
  if (type === 'bool') return v ? 'True' : 'False';
  return String(v);
}

/**
 * The originals' run directory name: the model class name, then key+value of every model kwarg
 * sorted by key, joined by '_' (e.g. MixMatch_archresnet_batch64_beta0.75_..._wd0.02).
 */
export function runName(className: string, kwargs: Array<{ name: string; value: HParamValue; type: 'float' | 'int' | 'string' | 'bool' }>): string {
  const parts = kwargs
    .slice()
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((k) => `${k.name}${pyValue(k.value, k.type)}`);
  return [className, ...parts].join('_');
}
