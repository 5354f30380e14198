// The dashboard's main module: polls the state endpoint (every refreshMs, at most 2 s, one
// request at a time), asks for an API key when it answers 401, renders, and announces
// changes of node health and circuits in a live region.
import { createCharts, renderCharts } from './charts.js';
import { el } from './dom.js';
import { clock } from './format.js';
import { refreshAges, renderFleet, renderModels, renderScan, renderSummary } from './render-tables.js';

const STATE_URL = '/dashboard/state';
/** DASHBOARD_STATE_VERSION of the contract this page was written for. */
const STATE_VERSION = 1;
const KEY_STORAGE = 'ai-lb-dashboard-key';
const DEFAULT_REFRESH_MS = 2000;
const MAX_CHANGES = 8;

const $ = (id) => document.getElementById(id);

const page = {
  status: $('status'),
  updated: $('updated'),
  pause: $('pause'),
  forgetKey: $('forget-key'),
  auth: $('auth'),
  keyForm: $('key-form'),
  keyInput: $('key-input'),
  authError: $('auth-error'),
  main: $('main'),
  summary: $('summary'),
  changes: $('changes'),
  fleet: $('fleet'),
  fleetBody: document.querySelector('#fleet-table tbody'),
  modelsBody: document.querySelector('#models-table tbody'),
  charts: $('charts'),
  trafficNote: $('traffic-note'),
  scan: { note: $('scan-note'), summary: $('scan-summary'), tbody: document.querySelector('#scan-table tbody') },
  serviceName: $('service-name'),
};

let paused = false;
let timer;
let previous = null;
let inFlight = false;

function storedKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE);
  } catch {
    return null; // storage disabled: the key lives only until the page closes
  }
}

function storeKey(key) {
  try {
    if (key === null) sessionStorage.removeItem(KEY_STORAGE);
    else sessionStorage.setItem(KEY_STORAGE, key);
  } catch {}
}

function setStatus(text, tone) {
  if (page.status.textContent !== text) page.status.textContent = text;
  page.status.dataset.tone = tone;
}

/** No key, no data: what an earlier key showed is removed, not just hidden. */
function clearData() {
  for (const container of [page.summary, page.fleetBody, page.modelsBody, page.scan.summary, page.scan.tbody, page.changes]) {
    container.replaceChildren();
    delete container.dataset.key;
  }
  renderCharts(page.charts, null);
  previous = null;
}

function showAuth(message) {
  const wasHidden = page.auth.hidden;
  if (previous !== null) clearData();
  page.auth.hidden = false;
  page.main.hidden = true;
  page.forgetKey.hidden = storedKey() === null;
  page.authError.textContent = message;
  setStatus('Waiting for an API key.', 'warn');
  if (wasHidden) page.keyInput.focus();
}

function hideAuth() {
  const wasShown = !page.auth.hidden;
  page.auth.hidden = true;
  page.main.hidden = false;
  page.forgetKey.hidden = storedKey() === null;
  if (wasShown) page.fleet.focus();
}

/** Logs what changed since the last state: nodes appearing, leaving, health and circuit. */
function announceChanges(state) {
  if (previous === null) return;
  const before = new Map(previous.fleet.map((n) => [n.node, n]));
  const lines = [];
  for (const node of state.fleet) {
    const old = before.get(node.node);
    before.delete(node.node);
    if (!old) lines.push(`${node.node} joined the fleet (${node.healthy ? 'healthy' : 'unhealthy'})`);
    else {
      if (old.healthy !== node.healthy) lines.push(`${node.node} became ${node.healthy ? 'healthy' : 'unhealthy'}`);
      if (old.circuit !== node.circuit) lines.push(`${node.node} circuit ${node.circuit.replace('_', '-')}`);
    }
  }
  for (const gone of before.keys()) lines.push(`${gone} left the fleet`);
  const at = clock(state.generatedAtMs);
  for (const line of lines) page.changes.prepend(el('li', {}, el('time', {}, at), ` ${line}`));
  while (page.changes.children.length > MAX_CHANGES) page.changes.lastElementChild.remove();
}

function render(state) {
  page.serviceName.textContent = state.service === 'monitor' ? 'monitor' : 'fleet';
  announceChanges(state);
  renderSummary(page.summary, state);
  renderFleet(page.fleetBody, state);
  renderModels(page.modelsBody, state);
  page.trafficNote.textContent = state.traffic
    ? 'What this process answered, in 10-second steps.'
    : 'This process routes no requests: open a gateway\u2019s /dashboard for traffic.';
  page.charts.hidden = state.traffic === null;
  renderCharts(page.charts, state.traffic);
  renderScan(page.scan, state);
  refreshAges(page.main, state.generatedAtMs);
  const s = state.summary;
  // The live status changes only when its words do: a time in it would be announced every 2 s.
  setStatus(`${s.healthyNodes} of ${s.nodes} nodes healthy.`, s.healthyNodes < s.nodes ? 'warn' : 'ok');
  page.updated.textContent = `Updated ${clock(state.generatedAtMs)}`;
  previous = state;
}

async function poll() {
  if (inFlight) return;
  inFlight = true;
  let next = previous?.refreshMs ?? DEFAULT_REFRESH_MS;
  try {
    const key = storedKey();
    const response = await fetch(STATE_URL, {
      headers: key ? { authorization: `Bearer ${key}` } : {},
      cache: 'no-store',
      credentials: 'omit',
    });
    if (response.status === 401) {
      if (key !== null) storeKey(null);
      showAuth(key !== null ? 'That key was not accepted. Check GATEWAY_API_KEYS and try again.' : '');
      return;
    }
    if (!response.ok) throw new Error(`the state endpoint answered ${response.status}`);
    const state = await response.json();
    if (state.version !== STATE_VERSION) throw new Error(`data version ${state.version}, this page reads ${STATE_VERSION}: reload it`);
    hideAuth();
    render(state);
    next = state.refreshMs ?? next;
  } catch (error) {
    setStatus(`Cannot reach ai-lb (${error.message}); retrying. The figures below may be out of date.`, 'bad');
  } finally {
    inFlight = false;
    schedule(next);
  }
}

// A tab in the background polls nothing (no load on ai-lb for a page nobody sees) and
// catches up at once when it is shown again.
function schedule(delayMs) {
  clearTimeout(timer);
  if (!paused && !document.hidden) timer = setTimeout(poll, Math.min(delayMs, DEFAULT_REFRESH_MS));
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && !paused) poll();
});

page.pause.addEventListener('click', () => {
  paused = !paused;
  page.pause.setAttribute('aria-pressed', String(paused));
  page.pause.textContent = paused ? 'Resume updates' : 'Pause updates';
  if (paused) {
    clearTimeout(timer);
    setStatus('Updates paused.', 'warn');
  } else poll();
});

page.keyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = page.keyInput.value.trim();
  if (key === '') {
    page.authError.textContent = 'Enter a key first.';
    return;
  }
  storeKey(key);
  page.keyInput.value = '';
  page.authError.textContent = '';
  poll();
});

page.forgetKey.addEventListener('click', () => {
  storeKey(null);
  page.forgetKey.hidden = true;
  poll();
});

createCharts(page.charts);
poll();
