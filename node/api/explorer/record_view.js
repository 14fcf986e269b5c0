// A record, expanded to its inclusion proof and verified in the browser. What is shown
// once verified is decoded from the proven record bytes, not taken from the node's JSON;
// the node's listing (when there is one) is compared with it.

import { get } from './api.js';
import { verifyRecordProof } from './proofs.js';
import { formatCount, formatFee, formatHours, formatRisk, formatTerms, sameJson, summary } from './records.js';
import { untrusted } from './trust.js';
import { checklist, clear, fields, h, hash, link, time, verdict } from './ui.js';

function bodyFields(kind, b) {
  switch (kind) {
    case 'branch.profile':
      return [['name', b.name], ['address', b.address], ['region', b.region],
        ['location', `${(b.lat_micro / 1e6).toFixed(4)}, ${(b.lon_micro / 1e6).toFixed(4)}`], ['hours', formatHours(b.hours)],
        ['phone', b.contact_phone || '–'], ['web', b.contact_url || '–']];
    case 'service.offer':
      return [['service', b.service_id], ['title', b.title], ['category', b.category], ['description', b.description],
        ['channels', b.channels.join(', ')], ['hours', formatHours(b.hours)],
        ['fees', b.fees.length ? h('ul.plain', b.fees.map((f) => h('li', formatFee(f)))) : 'none'],
        ['risk', formatRisk(b.risk_level)], ['ownership', b.ownership === 'consigned' ? `consigned, issued by ${b.issuer}` : 'own product'],
        ['accessibility', b.accessibility.join(', ') || '–'], ['effective from', time(b.effective_from_ms)],
        ...(b.terms ? [['terms', formatTerms(b.terms)],
          ['valid until', Number(b.terms.valid_until_ms) ? time(b.terms.valid_until_ms) : 'open-ended']] : [])];
    case 'branch.quality':
      return [['period', b.period],
        ['complaints', b.complaints.map((c) => `${c.category} ${formatCount(c.received)} received, ${formatCount(c.resolved)} resolved`).join('; ') || 'none'],
        ['resolution', Number(b.resolution_median_hours) === -1 ? 'not disclosed' : `median ${b.resolution_median_hours} h, p90 ${b.resolution_p90_hours} h`],
        ['waiting', Number(b.wait_avg_minutes) === -1 ? 'not measured' : `average ${b.wait_avg_minutes} min, p90 ${b.wait_p90_minutes} min`],
        ['self-service', Number(b.self_service_availability_bp) === -1 ? 'none' : pctText(b.self_service_availability_bp)]];
    case 'service.withdraw':
      return [['service', b.service_id], ['reason', b.reason || '–']];
    case 'service.status':
      return [['service', b.service_id], ['status', b.status], ['wait', `${b.wait_minutes} min`],
        ['equipment', b.equipment.length ? b.equipment.map((e) => `${e.equipment_id} ${e.up ? 'up' : 'DOWN'}`).join(', ') : '–']];
    default: return [];
  }
}

const pctText = (bp) => `${(Number(bp) / 100).toFixed(2)} % available`;

/** The verified content of a record (from its bytes). */
export function recordDetails(record) {
  return h('div.record', { test: 'verified-record' },
    fields([
      ['record', hash(record.hash, 16)],
      ['kind', record.kind],
      ['branch', record.member ? link(`#/branch/${record.branch_id}`, record.member.name) : record.branch_id],
      ['subject, seq', `${record.subject} #${record.seq}`],
      ['signed at', time(record.time_ms)],
      ...bodyFields(record.kind, record.body),
    ]));
}

/** Fetch and verify the proof of record `hashHex`; `listed` is the node's JSON of its body. */
export async function verifyRecord(ctx, hashHex, listed) {
  if (!ctx.trust.usable) return untrusted(ctx.trust);
  const proof = await get(`/v1/records/${hashHex}/proof`);
  const report = await verifyRecordProof(proof, ctx.trust.genesis);
  if (!report.ok) return report;
  const extra = [[`the proven record is the one asked for (${hashHex.slice(0, 12)}…)`, report.record.hash === hashHex, 'wrong_record',
    `the proof is for record ${report.record.hash}, not ${hashHex}`]];
  if (listed) extra.push(['the node\'s listing matches the signed record', sameJson(listed, report.record.body), 'listing_differs',
    "the node's JSON for this record differs from the signed record bytes"]);
  for (const [label, ok, reason, message] of extra) {
    report.checks.push({ label, ok, detail: ok ? '' : message });
    if (!ok) return { ...report, ok: false, reason, message };
  }
  return report;
}

/** A collapsible "record and proof" panel; verification runs when it is first opened. */
export function recordPanel(ctx, hashHex, { listed = null, label = 'record and proof', open = false } = {}) {
  const body = h('div.proof-body');
  const badge = h('span.verdict-slot');
  const el = h('details.proof', { test: 'proof', 'data-record': hashHex }, h('summary', label, ' ', badge), body);
  let started = false;
  const run = async () => {
    if (started) return;
    started = true;
    clear(badge, verdict(null));
    clear(body, h('p.muted', 'fetching the proof and checking it against the genesis file…'));
    let report;
    try { report = await verifyRecord(ctx, hashHex, listed); } catch (e) {
      report = { ok: false, reason: 'fetch_failed', message: e.message, checks: [] };
    }
    clear(badge, verdict(report));
    const header = report.header;
    clear(body,
      h('p', verdict(report, 'proof-verdict'), report.ok
        ? ` ${summary(report.record.kind, report.record.body)} — in block ${report.height}, certified by ${report.certificate.signers.filter((s) => s.valid).length} of ${report.certificate.signers.length} validators (${report.certificate.signedPower} of ${report.certificate.totalPower} power)`
        : ''),
      checklist(report),
      report.ok ? recordDetails(report.record) : null,
      header ? h('p.muted', 'against block ', link(`#/block/${header.height}`, `#${header.height}`), ', header ', hash(report.headerHash, 16)) : null);
  };
  el.addEventListener('toggle', () => { if (el.open) run(); });
  if (open) { el.open = true; run(); }
  return el;
}
