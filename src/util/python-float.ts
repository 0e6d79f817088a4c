/**
 * A float as Python writes it: str()/repr() for run names ("75.0", "0.002", "1e-05"), or
 * json.dumps() for stats files, which differ only in how they spell NaN and the infinities.
 */
export function pyFloat(v: number, style: 'str' | 'json' = 'str'): string {
  if (Number.isNaN(v)) return style === 'json' ? 'NaN' : 'nan';
  if (!Number.isFinite(v)) return style === 'json' ? (v > 0 ? 'Infinity' : '-Infinity') : v > 0 ? 'inf' : '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0.0' : '0.0';
  // both languages print the shortest round-tripping digits; they differ only in when they switch
  // to exponent notation (Python: exponent < -4 or >= 16) and in how they write the exponent
  const [mant, expStr] = v.toExponential().split('e');
  const exp = Number(expStr);
  if (exp < -4 || exp >= 16) {
    return `${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  const s = String(v);
  return s.includes('.') ? s : `${s}.0`;
}
