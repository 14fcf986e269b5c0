// Two small SVG charts, styled by style.css (no inline styles: the CSP forbids them).

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const niceMax = (v) => {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((m) => m >= v);
};

/** Lines over x. series: [{name, cls, points: [[x, y|null], ...]}]; y in `unit`. */
export function lineChart(series, { unit = 'ms', height = 180, test } = {}) {
  const W = 640, H = height, left = 48, right = 8, top = 10, bottom = 22;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]).filter((y) => y !== null));
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1), yMax = niceMax(Math.max(...ys, 0));
  const X = (x) => left + ((x - x0) / (x1 - x0)) * (W - left - right);
  const Y = (y) => top + (1 - y / yMax) * (H - top - bottom);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'data-test': test ?? 'chart' });
  for (const f of [0, 0.5, 1]) {
    root.append(svg('line', { x1: left, x2: W - right, y1: Y(yMax * f), y2: Y(yMax * f), class: 'grid' }));
    root.append(svg('text', { x: left - 4, y: Y(yMax * f) + 4, class: 'axis', 'text-anchor': 'end' }, `${yMax * f}${f ? ` ${unit}` : ''}`));
  }
  root.append(svg('text', { x: left, y: H - 6, class: 'axis' }, `#${x0}`));
  root.append(svg('text', { x: W - right, y: H - 6, class: 'axis', 'text-anchor': 'end' }, `#${x1}`));
  for (const s of series) {
    const segments = [];
    let current = [];
    for (const [x, y] of s.points) {
      if (y === null) { if (current.length) segments.push(current); current = []; } else current.push(`${X(x).toFixed(1)},${Y(y).toFixed(1)}`);
    }
    if (current.length) segments.push(current);
    for (const seg of segments) {
      if (seg.length === 1) { const [cx, cy] = seg[0].split(','); root.append(svg('circle', { cx, cy, r: 2.5, class: `dot ${s.cls}` })); }
      else root.append(svg('polyline', { points: seg.join(' '), class: `line ${s.cls}` }));
    }
  }
  const legend = svg('g', { class: 'legend' });
  series.forEach((s, i) => {
    legend.append(svg('rect', { x: left + 8 + i * 170, y: top, width: 10, height: 10, class: `swatch ${s.cls}` }));
    legend.append(svg('text', { x: left + 22 + i * 170, y: top + 9, class: 'axis' }, s.name));
  });
  root.append(legend);
  return root;
}

/** Horizontal bars: [{label, value, text}] (value a number, text what is printed). */
export function barChart(bars, { test } = {}) {
  const row = 26, W = 640, labelW = 230, H = bars.length * row + 8;
  const max = Math.max(...bars.map((b) => b.value), 0) || 1;
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart bars', role: 'img', 'data-test': test ?? 'bars' });
  bars.forEach((b, i) => {
    const y = 4 + i * row, w = Math.max(2, (b.value / max) * (W - labelW - 110));
    root.append(svg('text', { x: labelW - 8, y: y + 16, class: 'axis', 'text-anchor': 'end' }, b.label));
    root.append(svg('rect', { x: labelW, y: y + 4, width: w, height: row - 10, class: 'bar', 'data-value': b.value }));
    root.append(svg('text', { x: labelW + w + 6, y: y + 16, class: 'value', 'data-test': 'bar-value' }, b.text));
  });
  return root;
}
