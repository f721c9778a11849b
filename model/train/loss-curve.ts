// The loss-curve picture written next to the checkpoint: training loss (and its moving average)
// and validation loss against tokens seen, as a self-contained SVG (no chart library needed).

export interface CurvePoint {
  tokens: number;
  loss: number;
}

export interface CurveSeries {
  label: string;
  color: string;
  points: CurvePoint[];
  /** Draw dots instead of a line (sparse series such as validation). */
  dots?: boolean;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function niceTicks(min: number, max: number, count: number): number[] {
  const span = max - min || 1;
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max + 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmtTokens(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}k`;
  return String(n);
}

/** Trailing moving average over ~4 % of the points: a readable line through noisy per-step losses. */
export function smooth(points: CurvePoint[], window = Math.max(1, Math.ceil(points.length / 25))): CurvePoint[] {
  let sum = 0;
  return points.map((p, i) => {
    sum += p.loss;
    if (i >= window) sum -= points[i - window].loss;
    return { tokens: p.tokens, loss: sum / Math.min(i + 1, window) };
  });
}

export function renderLossCurve(title: string, series: CurveSeries[], width = 720, height = 420): string {
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.loss));
  const m = { left: 56, right: 16, top: 36, bottom: 44 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  if (all.length === 0) {
    parts.push(`<text x="${width / 2}" y="${height / 2}" text-anchor="middle">no data yet</text></svg>`);
    return parts.join('\n');
  }
  const xMax = Math.max(...all.map((p) => p.tokens), 1);
  const yMin = Math.min(...all.map((p) => p.loss));
  const yMax = Math.max(...all.map((p) => p.loss));
  const y0 = Math.max(0, yMin - 0.05 * (yMax - yMin || 1));
  const y1 = yMax + 0.05 * (yMax - yMin || 1);
  const X = (t: number) => m.left + (t / xMax) * w;
  const Y = (l: number) => m.top + h - ((l - y0) / (y1 - y0)) * h;
  for (const t of niceTicks(0, xMax, 6)) {
    parts.push(`<line x1="${X(t)}" y1="${m.top}" x2="${X(t)}" y2="${m.top + h}" stroke="#eee"/>`);
    parts.push(`<text x="${X(t)}" y="${m.top + h + 16}" text-anchor="middle">${fmtTokens(t)}</text>`);
  }
  for (const v of niceTicks(y0, y1, 6)) {
    parts.push(`<line x1="${m.left}" y1="${Y(v)}" x2="${m.left + w}" y2="${Y(v)}" stroke="#eee"/>`);
    parts.push(`<text x="${m.left - 6}" y="${Y(v) + 4}" text-anchor="end">${v}</text>`);
  }
  parts.push(`<rect x="${m.left}" y="${m.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
  parts.push(`<text x="${m.left + w / 2}" y="${height - 8}" text-anchor="middle">tokens seen</text>`);
  parts.push(`<text transform="translate(14 ${m.top + h / 2}) rotate(-90)" text-anchor="middle">cross-entropy (nats/token)</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => Number.isFinite(p.loss));
    if (s.dots) {
      for (const p of pts) parts.push(`<circle cx="${X(p.tokens).toFixed(1)}" cy="${Y(p.loss).toFixed(1)}" r="3" fill="${s.color}"/>`);
    } else if (pts.length) {
      const d = pts.map((p, k) => `${k ? 'L' : 'M'}${X(p.tokens).toFixed(1)},${Y(p.loss).toFixed(1)}`).join('');
      parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.2"/>`);
    }
    const ly = m.top + 14 + i * 16;
    parts.push(`<rect x="${m.left + w - 170}" y="${ly - 9}" width="10" height="10" fill="${s.color}"/>`);
    parts.push(`<text x="${m.left + w - 155}" y="${ly}">${esc(s.label)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
