// The explorer: hash routes, the trusted genesis, one live event stream, theme and token.
//
//   #/                 network            #/services?...   search services
//   #/blocks           live block list    #/fees/CATEGORY  fee comparison
//   #/block/HEIGHT     verified block     #/branches       member branches
//   #/branch/ID        branch, timeline   #/genesis        what verification trusts
//   #/governance?status=S  proposals, tallies, validator sets, members, parameters

import { followEvents, setToken, token } from './api.js';
import { blockPage, blocksPage } from './page_blocks.js';
import { branchesPage, branchPage } from './page_branch.js';
import { genesisPage } from './page_genesis.js';
import { governancePage } from './page_governance.js';
import { networkPage } from './page_network.js';
import { feesPage, servicesPage } from './page_services.js';
import { loadTrust } from './trust.js';
import { clear, h, short } from './ui.js';

const ROUTES = [
  [/^$/, networkPage, 'network'],
  [/^blocks$/, blocksPage, 'blocks'],
  [/^block\/(\d+)$/, blockPage, 'blocks'],
  [/^services$/, servicesPage, 'services'],
  [/^fees(?:\/([a-z_]+))?$/, feesPage, 'fees'],
  [/^branches$/, branchesPage, 'branches'],
  [/^branch\/([0-9a-f]{40})$/, branchPage, 'branches'],
  [/^governance$/, governancePage, 'governance'],
  [/^genesis$/, genesisPage, 'genesis'],
];

// ------------------------------------------------------------------ live events: one stream for every page

const listeners = { block: new Set(), record: new Set(), validator_set: new Set() };
const live = {
  on(name, fn) { listeners[name].add(fn); return () => listeners[name].delete(fn); },
};

function startLive() {
  const dot = document.getElementById('live');
  followEvents((name, data) => {
    for (const fn of listeners[name] ?? []) fn(data);
    if (name === 'block') dot.title = `live: block ${data.height}`;
  }, (state) => { dot.dataset.state = state; dot.textContent = state === 'live' ? '● live' : '○ offline'; });
}

// ------------------------------------------------------------------ theme and token

function setupTheme() {
  const button = document.getElementById('theme');
  const apply = (mode) => {
    document.documentElement.dataset.theme = mode;
    button.textContent = { auto: '◐ auto', light: '☀ light', dark: '☾ dark' }[mode];
    localStorage.setItem('branchnet-explorer-theme', mode);
  };
  apply(localStorage.getItem('branchnet-explorer-theme') || 'auto');
  button.addEventListener('click', () => {
    const order = ['auto', 'light', 'dark'];
    apply(order[(order.indexOf(document.documentElement.dataset.theme) + 1) % 3]);
  });
}

function setupToken() {
  const form = document.getElementById('token-form');
  const field = form.querySelector('input');
  document.getElementById('token').addEventListener('click', () => { form.hidden = !form.hidden; field.value = token(); });
  document.addEventListener('need-token', () => { form.hidden = false; });
  form.addEventListener('submit', (ev) => { ev.preventDefault(); setToken(field.value); location.reload(); });
}

// ------------------------------------------------------------------ routing

let ctx = null;
let cleanup = null;

async function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  const [path, search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const view = document.getElementById('view');
  const found = ROUTES.map(([re, page, nav]) => [path.match(re), page, nav]).find(([m]) => m);
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', !!found && a.dataset.nav === found[2]);
  clear(view);
  if (!found) { view.append(h('h1', 'Not found'), h('p', 'No such page.')); return; }
  const [match, page] = found;
  view.dataset.page = found[2];
  view.dataset.ready = 'no';
  try {
    cleanup = await page(view, ctx, match.slice(1).map((x) => x && decodeURIComponent(x)), new URLSearchParams(search));
  } catch (e) {
    console.error(e);
    view.append(h('p.error', `This page failed: ${e.message}`));
  }
  view.dataset.ready = 'yes';
}

function showTrust(trust) {
  const el = document.getElementById('trust');
  const g = trust.genesis;
  el.dataset.state = trust.usable ? (trust.matches ? 'matches' : 'loaded') : 'untrusted';
  clear(el, h('a', { href: '#/genesis' }, trust.usable
    ? `genesis ${short(g.hashHex, 12)} (${trust.source === 'pasted' ? 'yours' : 'from this node'}${trust.matches ? ', as expected' : ''})`
    : '✘ no trusted genesis: nothing verifies'));
}

async function main() {
  setupTheme();
  setupToken();
  const trust = await loadTrust();
  const names = new Map(trust.genesis?.members.map((m) => [m.id, m.name]) ?? []);
  ctx = { trust, live, nameOf: (id) => names.get(id) ?? short(id, 12) };
  showTrust(trust);
  startLive();
  window.addEventListener('hashchange', route);
  await route();
}

main();
