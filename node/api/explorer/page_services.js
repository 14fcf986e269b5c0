// Services: search the registry by category, region, channel, risk level, ownership
// and fee, each service expandable to its verified record; and a comparison of the
// fees of one category across branches.

import { get } from './api.js';
import { barChart } from './chart.js';
import { recordPanel } from './record_view.js';
import { formatAmount, formatFee, formatRisk } from './records.js';
import { append, card, clear, h, link, table, errorBox } from './ui.js';

const CATEGORIES = ['cash', 'deposit', 'transfer', 'account', 'loan', 'wealth', 'fx', 'agency', 'self_service', 'advisory'];
const CHANNELS = ['counter', 'low_counter', 'self_service', 'online', 'mobile', 'phone', 'appointment'];
const BASES = ['free', 'per_transaction', 'per_month', 'per_year', 'one_time', 'percent_bp'];
const FILTERS = ['category', 'region', 'channel', 'risk_level', 'ownership', 'fee_basis', 'max_fee', 'status', 'q'];

const select = (name, values, current, label = name) => h('label', label,
  h('select', { name, test: `filter-${name}` }, h('option', { value: '' }, 'any'),
    values.map((v) => h('option', { value: v, selected: String(current) === String(v) }, v))));
const input = (name, current, attrs = {}) => h('label', attrs.label ?? name,
  h('input', { name, value: current ?? '', test: `filter-${name}`, ...attrs, label: undefined }));

function serviceRows(ctx, services) {
  return services.flatMap((s) => {
    const st = s.status;
    const row = h('tr', { test: 'service-row', 'data-service': s.service_id, 'data-branch': s.branch_id },
      h('td', link(`#/branch/${s.branch_id}`, s.branch_name), h('div.muted', s.region ?? '')),
      h('td', s.offer.title, h('div.muted', s.service_id)),
      h('td', s.offer.category),
      h('td', { test: 'risk' }, formatRisk(s.offer.risk_level)),
      h('td', s.offer.ownership === 'consigned' ? h('span', { title: s.offer.issuer }, 'consigned') : 'own'),
      h('td', { test: 'fees' }, s.offer.fees.map((f) => h('div', formatFee(f)))),
      h('td', { test: 'status' }, st ? `${st.status}${st.wait_minutes ? `, ${st.wait_minutes} min` : ''}` : '–'));
    const proof = h('tr.proof-row', h('td', { colspan: 7 }, recordPanel(ctx, s.record_hash, { listed: s.offer, label: 'verify this service: record and proof' })));
    return [row, proof];
  });
}

export async function servicesPage(root, ctx, _args, query) {
  const form = h('form.filters', { test: 'filters' },
    select('category', CATEGORIES, query.get('category')),
    input('region', query.get('region'), { placeholder: 'CN-BJ', size: 10 }),
    select('channel', CHANNELS, query.get('channel')),
    select('risk_level', [0, 1, 2, 3, 4, 5], query.get('risk_level'), 'risk'),
    select('ownership', ['own', 'consigned'], query.get('ownership')),
    select('fee_basis', BASES, query.get('fee_basis'), 'fee basis'),
    input('max_fee', query.get('max_fee'), { type: 'number', min: 0, size: 8, label: 'max fee (minor units / bp)' }),
    select('status', ['open', 'paused', 'closed'], query.get('status')),
    input('q', query.get('q'), { placeholder: 'text', size: 12, label: 'text' }),
    h('button', { type: 'submit' }, 'search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams([...new FormData(form)].filter(([, v]) => v !== ''));
    location.hash = `#/services${q.size ? `?${q}` : ''}`;
  });
  const results = h('div', { test: 'results' });
  const cat = query.get('category');
  append(root, h('h1', 'Services'), form,
    cat ? h('p', link(`#/fees/${cat}`, `compare the fees of ${cat} across branches →`)) : null, results);
  const params = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) ?? undefined]));
  try {
    const doc = await get('/v1/services', { ...params, limit: 200 });
    clear(results, h('p', { test: 'total' }, `${doc.total} service${doc.total === 1 ? '' : 's'} on offer`),
      doc.services.length ? h('div.scroll', h('table.services', h('thead', h('tr',
        ['branch', 'service', 'category', 'risk', 'ownership', 'fees', 'status'].map((c) => h('th', c)))),
      h('tbody', serviceRows(ctx, doc.services)))) : null);
  } catch (e) { clear(results, errorBox(e)); }
  return null;
}

export async function feesPage(root, ctx, [category = 'fx']) {
  const picker = h('p', 'category: ', CATEGORIES.map((c) => [c === category ? h('strong', c) : link(`#/fees/${c}`, c), ' ']));
  const out = h('div');
  append(root, h('h1', `Fees: ${category}`), picker, out);
  try {
    const doc = await get('/v1/services', { category, limit: 1000 });
    const groups = new Map(); // "label · basis · currency" -> bars
    for (const s of doc.services) {
      for (const f of s.offer.fees) {
        const unit = f.basis === 'percent_bp' ? '%' : f.basis === 'free' ? '' : f.currency;
        const key = `${f.label} — ${f.basis.replaceAll('_', ' ')}${unit ? ` (${unit})` : ''}`;
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push({ label: `${s.branch_name}: ${s.offer.title}`.slice(0, 40), value: Number(f.amount_minor), text: formatAmount(f), s });
      }
    }
    const free = doc.services.filter((s) => s.offer.fees.length === 0);
    clear(out, doc.services.length ? [
      [...groups].map(([key, bars]) => card(key, h('div', { test: 'fee-group', 'data-key': key },
        barChart(bars.sort((a, b) => a.value - b.value), { test: 'fee-chart' })))),
      free.length ? card('No fee disclosed', h('ul', free.map((s) => h('li', `${s.branch_name}: ${s.offer.title}`)))) : null,
      card('All fees', table(['branch', 'service', 'fees'], doc.services.map((s) => [s.branch_name, s.offer.title,
        s.offer.fees.map((f) => h('div', formatFee(f)))]))),
      h('p.muted', 'Fees as listed by the node; open a service on the services page to verify its record.'),
    ] : h('p.muted', { test: 'no-services' }, `no ${category} services on offer`));
  } catch (e) { clear(out, errorBox(e)); }
  return null;
}
