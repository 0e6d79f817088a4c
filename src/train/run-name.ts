import type { HParamValue } from '../algorithms/types';

/** Python's str() of a float: 75 -> "75.0", 0.002 -> "0.002", 1e-05 -> "1e-05". */
export function pyFloat(v: number): string {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
  if (Number.isInteger(v) && Math.abs(v) < 1e16) return `${v}.0`;
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    // repr switches to exponent form; Python writes at least two exponent digits
    const [m, e] = v.toExponential().split('e');
    const exp = Number(e);
    const sign = exp < 0 ? '-' : '+';
    return `${m}e${sign}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return String(v);
}

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
