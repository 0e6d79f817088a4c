/**
 * Learning curves as a self-contained SVG: one panel per configuration, one line per seed, test
 * accuracy (%) against kimg. Plain SVG 1.1 with no scripts or external fonts, so browsers, sharp
 * (for the PNG) and TensorBoard-less users all read it.
 */
export interface CurveSeries {
  label: string;
  points: Array<{ x: number; y: number }>;
}

export interface CurvePanel {
  title: string;
  subtitle?: string;
  series: CurveSeries[];
  /** Right end of the x axis at least (train_kimg), so a run in progress shows how far it got. */
  xMax?: number;
}

const PANEL_W = 420;
const PANEL_H = 290;
const MARGIN = { left: 52, right: 16, top: 48, bottom: 42 };
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"';

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round tick positions covering [lo, hi]: steps of 1, 2, 2.5 or 5 times a power of ten. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) {
    const d = Math.abs(lo) > 0 ? Math.abs(lo) * 0.05 : 1;
    return niceTicks(lo - d, hi + d, count);
  }
  const raw = (hi - lo) / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? 10 * pow;
  const start = Math.floor(lo / step) * step;
  const ticks: number[] = [];
  for (let v = start; v <= hi + step * 1e-9 || ticks.length < 2; v += step) ticks.push(Math.round(v / step) * step);
  if (ticks[ticks.length - 1] < hi - step * 1e-9) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function fmtTick(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000);
}

function panelSvg(p: CurvePanel, ox: number, oy: number): string {
  const w = PANEL_W - MARGIN.left - MARGIN.right;
  const h = PANEL_H - MARGIN.top - MARGIN.bottom;
  const x0 = ox + MARGIN.left;
  const y0 = oy + MARGIN.top;
  const pts = p.series.flatMap((s) => s.points);
  const out: string[] = [];
  out.push(`<text x="${ox + PANEL_W / 2}" y="${oy + 18}" text-anchor="middle" font-size="13" font-weight="bold" ${FONT}>${escapeXml(p.title)}</text>`);
  if (p.subtitle) out.push(`<text x="${ox + PANEL_W / 2}" y="${oy + 34}" text-anchor="middle" font-size="11" fill="#555" ${FONT}>${escapeXml(p.subtitle)}</text>`);
  out.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  if (pts.length === 0) {
    out.push(`<text x="${x0 + w / 2}" y="${y0 + h / 2}" text-anchor="middle" font-size="12" fill="#777" ${FONT}>no evaluations yet</text>`);
    return out.join('\n');
  }
  const xt = niceTicks(0, Math.max(p.xMax ?? 0, ...pts.map((q) => q.x), 1e-9));
  const ys = pts.map((q) => q.y);
  const yt = niceTicks(Math.min(...ys), Math.max(...ys));
  const [xa, xb] = [xt[0], xt[xt.length - 1]];
  const [ya, yb] = [yt[0], yt[yt.length - 1]];
  const sx = (x: number) => x0 + ((x - xa) / (xb - xa)) * w;
  const sy = (y: number) => y0 + h - ((y - ya) / (yb - ya)) * h;
  const r = (v: number) => Math.round(v * 100) / 100;
  for (const t of xt) {
    out.push(`<line x1="${r(sx(t))}" y1="${y0}" x2="${r(sx(t))}" y2="${y0 + h}" stroke="#eee"/>`);
    out.push(`<text x="${r(sx(t))}" y="${y0 + h + 15}" text-anchor="middle" font-size="10" ${FONT}>${fmtTick(t)}</text>`);
  }
  for (const t of yt) {
    out.push(`<line x1="${x0}" y1="${r(sy(t))}" x2="${x0 + w}" y2="${r(sy(t))}" stroke="#eee"/>`);
    out.push(`<text x="${x0 - 6}" y="${r(sy(t)) + 3.5}" text-anchor="end" font-size="10" ${FONT}>${fmtTick(t)}</text>`);
  }
  out.push(`<text x="${x0 + w / 2}" y="${y0 + h + 32}" text-anchor="middle" font-size="11" ${FONT}>kimg</text>`);
  out.push(`<text transform="translate(${ox + 14} ${y0 + h / 2}) rotate(-90)" text-anchor="middle" font-size="11" ${FONT}>test accuracy (%)</text>`);
  p.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const coords = s.points.map((q) => `${r(sx(q.x))},${r(sy(q.y))}`).join(' ');
    if (s.points.length > 0) out.push(`<polyline class="series" data-label="${escapeXml(s.label)}" fill="none" stroke="${color}" stroke-width="1.6" points="${coords}"/>`);
    if (s.points.length <= 60) for (const q of s.points) out.push(`<circle cx="${r(sx(q.x))}" cy="${r(sy(q.y))}" r="2" fill="${color}"/>`);
    // top left: accuracy curves rise from the bottom left, so that corner stays clear
    const ly = y0 + 14 + i * 14;
    out.push(`<line x1="${x0 + 8}" y1="${ly - 4}" x2="${x0 + 24}" y2="${ly - 4}" stroke="${color}" stroke-width="2"/>`);
    out.push(`<text x="${x0 + 28}" y="${ly}" font-size="10" ${FONT}>${escapeXml(s.label)}${s.points.length ? '' : ' (no evaluations yet)'}</text>`);
  });
  return out.join('\n');
}

export function renderCurvesSvg(panels: CurvePanel[], title?: string): string {
  const cols = Math.max(1, Math.min(3, panels.length));
  const rows = Math.max(1, Math.ceil(panels.length / cols));
  const head = title ? 30 : 0;
  const width = cols * PANEL_W;
  const height = rows * PANEL_H + head;
  const body = panels.map((p, i) => panelSvg(p, (i % cols) * PANEL_W, head + Math.floor(i / cols) * PANEL_H));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    title ? `<text x="${width / 2}" y="21" text-anchor="middle" font-size="15" font-weight="bold" ${FONT}>${escapeXml(title)}</text>` : '',
    ...(panels.length ? body : [`<text x="${width / 2}" y="${height / 2}" text-anchor="middle" font-size="12" ${FONT}>no runs</text>`]),
    '</svg>',
    '',
  ]
    .filter((l) => l !== '')
    .join('\n');
}
