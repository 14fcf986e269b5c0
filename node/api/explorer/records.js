// Records (docs/PROTOCOL.md §5): decoding a record's canonical array into named
// fields (the same names and shapes as the API's JSON), and formatting them.

export const KINDS = ['branch.profile', 'service.offer', 'service.withdraw', 'service.status', 'branch.quality', 'gov.proposal', 'gov.vote',
  'branch.key'];

const hours = (a) => a.map(([day, open_minute, close_minute]) => ({ day, open_minute, close_minute }));
const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');

// Governance actions (PROTOCOL.md §15.2): the fields of each kind, in array order after the kind.
const ACTION_FIELDS = {
  admit_member: ['name', 'public_key'], retire_member: ['branch_id'], set_power: ['branch_id', 'power'],
  rotate_key: ['branch_id', 'public_key'], set_param: ['name', 'value'],
};
function action(a) {
  const fields = ACTION_FIELDS[a[0]];
  if (!fields || a.length !== fields.length + 1) throw new Error('unknown governance action');
  const out = { kind: a[0] };
  fields.forEach((f, i) => { out[f] = a[i + 1] instanceof Uint8Array ? hex(a[i + 1]) : a[i + 1]; });
  return out;
}

// Offer terms (§5.6.1): the product block's layout follows the offer's category.
const PRODUCT_OF_CATEGORY = { loan: 'loan', deposit: 'deposit', wealth: 'investment', agency: 'investment' };
const PRODUCTS = {
  loan: (p) => ({
    rate_min_bp: p[0], rate_max_bp: p[1], rate_type: p[2], rate_reference: p[3], spread_bp: p[4], term_min_months: p[5],
    term_max_months: p[6], amount_min_minor: p[7], amount_max_minor: p[8], currency: p[9], repayment_methods: p[10],
    collateral_required: p[11], collateral_kinds: p[12], early_repayment_fee_bp: p[13],
  }),
  deposit: (p) => ({
    rates: p[0].map(([term_months, rate_bp]) => ({ term_months, rate_bp })), min_amount_minor: p[1], currency: p[2],
    early_withdrawal: p[3], insured: p[4],
  }),
  investment: (p) => ({
    yield_min_bp: p[0], yield_max_bp: p[1], not_guaranteed: p[2], term_months: p[3], min_amount_minor: p[4], currency: p[5],
    redemption: p[6],
  }),
};

function terms(category, t) {
  const product = PRODUCT_OF_CATEGORY[category];
  if (!Array.isArray(t) || t.length !== (product ? 2 : 1)) throw new Error(`${category} terms have the wrong shape`);
  return product ? { valid_until_ms: t[0], [product]: PRODUCTS[product](t[1]) } : { valid_until_ms: t[0] };
}

const BODIES = {
  'branch.profile': (b) => ({
    name: b[0], address: b[1], region: b[2], lat_micro: b[3], lon_micro: b[4], hours: hours(b[5]),
    contact_phone: b[6], contact_url: b[7], public_numbers: b.length > 8 ? b[8] : [],
  }),
  'service.offer': (b) => ({
    service_id: b[0], category: b[1], title: b[2], description: b[3], channels: b[4], hours: hours(b[5]),
    fees: b[6].map(([label, amount_minor, currency, basis]) => ({ label, amount_minor, currency, basis })),
    risk_level: b[7], ownership: b[8], issuer: b[9], accessibility: b[10], effective_from_ms: b[11],
    ...(b.length > 12 ? { terms: terms(b[1], b[12]) } : {}),
  }),
  'service.withdraw': (b) => ({ service_id: b[0], reason: b[1] }),
  'service.status': (b) => ({
    service_id: b[0], status: b[1], wait_minutes: b[2],
    equipment: b[3].map(([equipment_id, up]) => ({ equipment_id, up })),
  }),
  'branch.quality': (b) => ({
    period: b[0], complaints: b[1].map(([category, received, resolved]) => ({ category, received, resolved })),
    resolution_median_hours: b[2], resolution_p90_hours: b[3], wait_avg_minutes: b[4], wait_p90_minutes: b[5],
    self_service_availability_bp: b[6],
  }),
  'gov.proposal': (b) => ({ name: b[0], action: action(b[1]), expires_height: b[2] }),
  'gov.vote': (b) => ({ proposal: hex(b[0]), yes: b[1] }),
  'branch.key': (b) => ({ public_key: hex(b[0]) }),
};
// the body lengths of each kind: optional trailing elements (profile public_numbers, offer terms) add one
const ARITY = { 'branch.profile': [8, 9], 'service.offer': [12, 13], 'service.withdraw': [2], 'service.status': [4],
  'branch.quality': [7], 'gov.proposal': [3], 'gov.vote': [2], 'branch.key': [1] };

/** The body array of a `kind` record as named fields; throws Error for a wrong shape. */
export function bodyFields(kind, body) {
  if (!(kind in BODIES)) throw new Error(`unknown record kind ${JSON.stringify(kind)}`);
  if (!Array.isArray(body) || !ARITY[kind].includes(body.length)) {
    throw new Error(`${kind} body must be an array of ${ARITY[kind].join(' or ')}`);
  }
  return BODIES[kind](body);
}

export function subjectOf(kind, body) {
  switch (kind) {
    case 'branch.profile': return 'profile';
    case 'branch.quality': return `quality/${body.period}`;
    case 'service.status': return `status/${body.service_id}`;
    case 'gov.proposal': return `gov/proposal/${body.name}`;
    case 'gov.vote': return `gov/vote/${body.proposal}`;
    case 'branch.key': return 'key';
    default: return `service/${body.service_id}`;
  }
}

/** Structural equality of JSON-like values (what a node shows vs. what was signed). */
export function sameJson(a, b) {
  if (typeof a === 'bigint' || typeof b === 'bigint') return String(a) === String(b);
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  if (a && typeof a === 'object') {
    if (!b || typeof b !== 'object' || Array.isArray(b)) return false;
    const ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
    return sameJson(ka, kb) && ka.every((k) => sameJson(a[k], b[k]));
  }
  return a === b;
}

// ------------------------------------------------------------------ formatting

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const hm = (m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;

export function formatHours(list) {
  if (!list || list.length === 0) return 'branch hours';
  return list.map((h) => `${DAYS[h.day]} ${hm(h.open_minute)}–${hm(h.close_minute)}`).join(', ');
}

/** A fee amount in its unit: "CNY 15.00", "1.20 %", "free". */
export function formatAmount(fee) {
  if (fee.basis === 'free') return 'free';
  if (fee.basis === 'percent_bp') return `${(Number(fee.amount_minor) / 100).toFixed(2)} %`;
  return `${fee.currency} ${(Number(fee.amount_minor) / 100).toFixed(2)}`;
}

export function formatFee(fee) {
  const basis = { free: '', per_transaction: ' per transaction', per_month: ' per month', per_year: ' per year',
    one_time: ' one-time', percent_bp: '' }[fee.basis] ?? ` ${fee.basis}`;
  return `${fee.label}: ${formatAmount(fee)}${basis}`;
}

export const formatRisk = (r) => (r ? `R${r}` : '–');

/** One line that says what a record did. */
export function summary(kind, body) {
  switch (kind) {
    case 'branch.profile': return `profile: ${body.name}, ${body.region}`;
    case 'service.offer': return `offers ${body.title} (${body.category}${body.risk_level ? `, R${body.risk_level}` : ''})`;
    case 'service.withdraw': return `withdraws ${body.service_id}${body.reason ? `: ${body.reason}` : ''}`;
    case 'branch.quality': return `service quality ${body.period}: ${body.complaints.length} complaint categories`;
    case 'service.status': {
      const down = body.equipment.filter((e) => !e.up).map((e) => e.equipment_id);
      return `${body.service_id} is ${body.status}${body.wait_minutes ? `, wait ${body.wait_minutes} min` : ''}`
        + (down.length ? `, down: ${down.join(', ')}` : '');
    }
    case 'gov.proposal': return `proposes ${body.name}: ${body.action.kind}`;
    case 'gov.vote': return `votes ${body.yes ? 'yes' : 'no'} on ${body.proposal.slice(0, 12)}…`;
    case 'branch.key': return `rotates its key to ${body.public_key.slice(0, 12)}…`;
    default: return kind;
  }
}

const pct = (bp) => `${(Number(bp) / 100).toFixed(2)} %`;

/** One line for an offer's terms (§5.6.1). */
export function formatTerms(t) {
  if (!t) return '–';
  const parts = [];
  if (t.loan) {
    const l = t.loan;
    parts.push(`${pct(l.rate_min_bp)}${l.rate_max_bp !== l.rate_min_bp ? `–${pct(l.rate_max_bp)}` : ''} ${l.rate_type}`
      + `${l.rate_type === 'floating' ? ` on ${l.rate_reference}` : ''}, ${l.term_min_months}–${l.term_max_months} months`);
  }
  if (t.deposit) parts.push(t.deposit.rates.map((r) => `${r.term_months ? `${r.term_months}m` : 'demand'} ${pct(r.rate_bp)}`).join(', ')
    + (t.deposit.insured ? ', insured' : ''));
  if (t.investment) parts.push(`expected ${pct(t.investment.yield_min_bp)}–${pct(t.investment.yield_max_bp)}, not guaranteed`);
  return parts.join('; ') || 'validity window only';
}

/** A count of branch.quality: -1 is "fewer than 5". */
export const formatCount = (n) => (Number(n) === -1 ? '<5' : String(n));
