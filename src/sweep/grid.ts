import { UserError } from '../errors';

/**
 * The grid of a sweep: a command template with `{seed}`, `{size}` and `{valid}` placeholders, and
 * the values each takes. Every combination is one run, in the order seeds x sizes x valid (the
 * order of the originals' shell loops: `for seed; do for size; do ...`).
 */

export const AXES = [
  { name: 'seed', flag: '--seeds' },
  { name: 'size', flag: '--sizes' },
  { name: 'valid', flag: '--valid' },
] as const;

export type AxisName = (typeof AXES)[number]['name'];
export type GridValues = Partial<Record<AxisName, number>>;
export type GridAxes = Partial<Record<AxisName, number[]>>;

export interface GridPoint {
  /** Position in the grid; also the Slurm array index. */
  index: number;
  values: GridValues;
  /** The template with every placeholder filled. */
  argv: string[];
}

const PLACEHOLDER = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * `1-5`, `250,4000`, `1-3,7`: integers and inclusive ranges, in the order written, duplicates
 * dropped. An empty list or a backwards range is an error: a grid that expands to nothing.
 */
export function parseIntList(spec: string, flag: string): number[] {
  const out: number[] = [];
  const parts = spec.split(',').map((p) => p.trim());
  if (spec.trim() === '' || parts.every((p) => p === '')) {
    throw new UserError(`the grid expands to nothing: ${flag} '${spec}' holds no values; give numbers and ranges such as 1-5 or 250,4000`);
  }
  for (const p of parts) {
    if (p === '') continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(p);
    if (!m) throw new UserError(`${flag} '${spec}': '${p}' is not a non-negative integer or a range a-b (e.g. 1-5 or 250,4000)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi)) throw new UserError(`${flag} '${spec}': '${p}' is too large`);
    if (hi < lo) throw new UserError(`the grid expands to nothing: ${flag} range ${p} runs backwards; write ${hi}-${lo}`);
    if (hi - lo > 100_000) throw new UserError(`${flag} '${spec}': range ${p} has more than 100,000 values`);
    for (let v = lo; v <= hi; v++) if (!out.includes(v)) out.push(v);
  }
  return out;
}

/** The placeholders a template uses, in order of first appearance. */
export function placeholdersOf(template: string[]): string[] {
  const seen: string[] = [];
  for (const arg of template) for (const m of arg.matchAll(PLACEHOLDER)) if (!seen.includes(m[1])) seen.push(m[1]);
  return seen;
}

function fill(arg: string, values: GridValues): string {
  return arg.replace(PLACEHOLDER, (_, name: string) => String(values[name as AxisName]));
}

/**
 * Every run of the grid. Refused, before anything runs: a placeholder no option fills, an option
 * whose placeholder the command lacks (every run would be the same), an empty grid.
 */
export function expandGrid(template: string[], axes: GridAxes): GridPoint[] {
  if (template.length === 0) {
    throw new UserError("nothing to sweep: give the ssl command after '--', e.g. ssl sweep --seeds 1-5 -- train --dataset cifar10.{seed}@250-5000");
  }
  const used = placeholdersOf(template);
  const known = new Map<string, (typeof AXES)[number]>(AXES.map((a) => [a.name, a]));
  for (const name of used) {
    const axis = known.get(name);
    const fills = AXES.map((a) => `{${a.name}} (${a.flag})`).join(', ');
    if (!axis) throw new UserError(`the command has {${name}}, which no option fills; ssl sweep fills ${fills}`);
    if (axes[axis.name] === undefined) throw new UserError(`the command has {${name}} but no ${axis.flag} was given to fill it`);
  }
  for (const a of AXES) {
    const values = axes[a.name];
    if (values === undefined) continue;
    if (!used.includes(a.name)) throw new UserError(`${a.flag} is given but the command has no {${a.name}}, so every run would be the same; put {${a.name}} where it belongs (e.g. --dataset cifar10.{seed}@{size}-{valid})`);
    if (values.length === 0) throw new UserError(`the grid expands to nothing: ${a.flag} holds no values`);
  }
  let combos: GridValues[] = [{}];
  for (const a of AXES) {
    const values = axes[a.name];
    if (values === undefined) continue;
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [a.name]: v })));
  }
  return combos.map((values, index) => ({ index, values, argv: template.map((arg) => fill(arg, values)) }));
}

/** `seed=1 size=250`, for logs and tables. */
export function describeValues(values: GridValues): string {
  const parts = AXES.filter((a) => values[a.name] !== undefined).map((a) => `${a.name}=${values[a.name]}`);
  return parts.length ? parts.join(' ') : 'the run';
}
