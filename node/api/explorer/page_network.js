// Network: chain, height, validators (power, last signed, missed), peers, mempool,
// block interval and finality over the last blocks; live through /v1/events.

import { get } from './api.js';
import { lineChart } from './chart.js';
import { toHex } from './verify.js';
import { append, card, clear, h, hash, link, stat, table, time, errorBox } from './ui.js';

const WINDOW = 60;

function throttle(fn, ms) {
  let last = 0, timer = null;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) { last = Date.now(); fn(); } else if (!timer) timer = setTimeout(() => { timer = null; last = Date.now(); fn(); }, wait);
  };
}

export async function networkPage(root, ctx) {
  const stats = h('div.stats', { test: 'stats' });
  const chart = h('div', { test: 'activity' });
  const validators = h('div', { test: 'validators' });
  const peers = h('div', { test: 'peers' });
  append(root, h('h1', 'Network'), stats,
    card('Block interval and finality', chart,
      h('p.muted', `Over the last ${WINDOW} blocks, from this node's blocks and certificates. Interval: time between block times. `
        + 'Finality: median time from a record being signed to the block that committed it (a block is final once certified).')),
    card('Validators', validators), card('Peers of this node', peers));

  async function refreshStatus() {
    const st = await get('/v1/status');
    const g = ctx.trust.genesis;
    clear(stats,
      stat('chain', st.chain_id, 'chain-id'),
      stat('genesis hash', g ? hash(g.hashHex, 16) : '–', 'genesis-hash'),
      stat('height', String(st.height), 'height'),
      stat('last block', time(st.last_block_time_ms), 'last-block-time'),
      stat('mempool', String(st.mempool), 'mempool'),
      stat('peers', String(st.peers), 'peer-count'),
      stat('this node', `${st.moniker} (${st.role})`, 'node'),
      g && g.chainId !== st.chain_id ? h('p.error', { test: 'chain-mismatch' }, `The node runs chain ${st.chain_id}; the genesis in use is for ${g.chainId}.`) : null);
  }

  async function refreshActivity() {
    const [act, vals, peerDoc] = await Promise.all([get('/v1/activity', { window: WINDOW }), get('/v1/validators'), get('/v1/peers')]);
    const blocks = act.blocks;
    clear(chart, blocks.length ? lineChart([
      { name: 'block interval (ms)', cls: 's1', points: blocks.map((b) => [b.height, b.interval_ms]) },
      { name: 'finality (ms)', cls: 's2', points: blocks.map((b) => [b.height, b.finality_ms]) },
    ], { test: 'activity-chart' }) : h('p.muted', 'no blocks yet'),
    h('p.muted', { test: 'rounds' }, `${blocks.filter((b) => b.round > 0).length} of ${blocks.length} blocks needed more than one round.`));
    const activity = new Map(act.validators.map((v) => [v.branch_id, v]));
    const inGenesis = new Map((ctx.trust.genesis?.validators ?? []).map((v) => [v.id, v]));
    const byPeer = new Map(vals.validators.map((v) => [v.peer_id, v]));
    clear(validators, table(['validator', 'power', 'last signed', `missed (of ${blocks.length})`, 'in genesis'],
      vals.validators.map((v) => {
        const a = activity.get(v.branch_id), g = inGenesis.get(v.branch_id);
        const same = g && g.power === v.power && toHex(g.publicKey) === v.public_key;
        return h('tr', { test: 'validator-row', 'data-id': v.branch_id },
          h('td', link(`#/branch/${v.branch_id}`, v.name), h('div.muted', hash(v.branch_id))),
          h('td', { test: 'power' }, `${v.power} (${((100 * v.power) / vals.total_power).toFixed(1)} %)`),
          h('td', { test: 'last-signed' }, a?.last_signed_height ? link(`#/block/${a.last_signed_height}`, `#${a.last_signed_height}`) : '–'),
          h('td', { test: 'missed' }, a ? String(a.missed) : '–'),
          h('td', { test: 'in-genesis' }, same ? '✔' : '✘ not the genesis set'));
      })),
    h('p.muted', `Total power ${vals.total_power}; a block needs signatures of more than two thirds of it. Counted from the certificates this node holds: another node may hold other valid certificates for a block.`));
    clear(peers, peerDoc.peers.length ? table(['peer id', 'validator'], peerDoc.peers.map((p) => h('tr', { test: 'peer-row' },
      h('td', h('code', p.peer_id)), h('td', byPeer.has(p.peer_id) ? byPeer.get(p.peer_id).name : '–'))))
      : h('p.muted', 'no connected peers'));
  }

  const safely = (fn) => () => fn().catch((e) => { console.error(e); clear(stats, errorBox(e)); });
  await Promise.all([safely(refreshStatus)(), safely(refreshActivity)()]);
  const status = throttle(safely(refreshStatus), 1000);
  const activity = throttle(safely(refreshActivity), 3000);
  return ctx.live.on('block', () => { status(); activity(); });
}
