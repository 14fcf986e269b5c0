// Small DOM helpers: element building (never innerHTML with data), formatting, badges.

/** h('tag.class#id', {attr: value, onclick: fn}, ...children) */
export function h(spec, attrs = {}, ...children) {
  const [, tag = 'div', rest = ''] = spec.match(/^([a-z0-9]+)?(.*)$/i);
  const el = document.createElement(tag);
  for (const part of rest.match(/[.#][^.#]+/g) ?? []) {
    if (part[0] === '.') el.classList.add(part.slice(1)); else el.id = part.slice(1);
  }
  if (attrs === null || typeof attrs !== 'object' || attrs instanceof Node || Array.isArray(attrs)) {
    children.unshift(attrs);
    attrs = {};
  }
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'test') el.dataset.test = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el, ...children) { el.replaceChildren(); return append(el, children); }

export const short = (hex, n = 10) => (hex && hex.length > n ? `${hex.slice(0, n)}…` : hex ?? '');

/** A hash shown short, the whole value in its title and selectable. */
export const hash = (hex, n = 12) => h('code.hash', { title: hex }, short(hex, n));

export function time(ms) {
  if (ms === null || ms === undefined) return '–';
  const d = new Date(Number(ms));
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

export function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - Number(ms)) / 1000));
  return s < 60 ? `${s}s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

export const link = (href, ...children) => h('a', { href }, ...children);

/** The verdict of a verification: "verified", "verification failed: …" or "verifying…". */
export function verdict(report, test = 'verdict') {
  if (!report) return h('span.badge.pending', { test, 'data-state': 'pending' }, 'verifying…');
  if (report.ok) return h('span.badge.ok', { test, 'data-state': 'verified' }, '✔ verified');
  return h('span.badge.bad', { test, 'data-state': 'failed', title: report.message }, '✘ verification failed');
}

/** The checks of a report, one line each, the reason of a failure spelled out. */
export function checklist(report) {
  return h('div.checks', { test: 'checks' },
    h('ul', report.checks.map((c) => h(`li.${c.ok ? 'ok' : 'bad'}`, c.ok ? '✔ ' : '✘ ', c.label, c.detail && c.ok ? h('span.muted', ` — ${c.detail}`) : null))),
    report.ok ? null : h('p.reason', { test: 'reason' }, `verification failed: ${report.message} (${report.reason})`));
}

export function table(columns, rows, attrs = {}) {
  return h('div.scroll', h('table', attrs,
    h('thead', h('tr', columns.map((c) => h('th', c)))),
    h('tbody', rows.map((r) => (r instanceof Node ? r : h('tr', r.map((cell) => h('td', cell))))))));
}

/** A definition list of [label, value] pairs. */
export const fields = (pairs, attrs = {}) => h('dl.fields', attrs, pairs.filter(Boolean).map(([k, v]) => [h('dt', k), h('dd', v)]));

export const card = (title, ...children) => h('section.card', h('h2', title), ...children);

export function stat(label, value, test) {
  return h('div.stat', h('div.label', label), h('div.value', { test }, value));
}

export function errorBox(e) {
  return h('p.error', { test: 'error' }, e?.status === 401
    ? 'This node asks for its API token to read (auth_reads): enter it with the token button above.'
    : `Could not load: ${e?.message ?? e}`);
}

/** Run a promise-returning loader into `el`, showing "loading…" and any error. */
export async function load(el, fn) {
  clear(el, h('p.muted', 'loading…'));
  try { clear(el, await fn()); } catch (e) { clear(el, errorBox(e)); console.error(e); }
}
