// The dashboard's text parts: summary cards, the fleet and models tables, the scan.
// Every state is written in words ("unhealthy", "open"); colour and symbols only repeat it.
import { el, replaceIfChanged } from './dom.js';
import { UNKNOWN, ago, clock, iso, ms, num, pair } from './format.js';

const SKIP_REASON_TEXT = {
  not_llm: 'not an LLM server',
  gateway: 'an ai-lb gateway',
  timeout: 'no answer in time',
  error: 'connection error',
};

export function renderSummary(container, state) {
  const s = state.summary;
  const cards = [
    ['Nodes', `${s.healthyNodes} of ${s.nodes} healthy`, s.healthyNodes < s.nodes ? 'warn' : 'ok'],
    ['Open circuits', num(s.openCircuits), s.openCircuits > 0 ? 'warn' : 'ok'],
    ['Models', num(s.models), 'plain'],
    ['Slots in use', num(s.inflight), 'plain'],
    ['Waiting for a slot', s.queued === null ? UNKNOWN : num(s.queued), s.queued ? 'warn' : 'plain'],
  ];
  replaceIfChanged(container, JSON.stringify(cards), () =>
    cards.map(([label, value, tone]) => el('div', { class: `card ${tone}` }, el('dt', {}, label), el('dd', {}, value))),
  );
}

function healthCell(node) {
  return node.healthy
    ? el('td', { class: 'state ok' }, el('span', { 'aria-hidden': 'true' }, '\u25CF '), 'healthy')
    : el('td', { class: 'state bad' }, el('span', { 'aria-hidden': 'true' }, '\u2716 '), 'unhealthy');
}

function circuitCell(node) {
  if (node.circuit === 'closed') {
    return el('td', { class: 'state ok' }, 'closed', node.circuitFailures > 0 ? ` (${node.circuitFailures} failures)` : '');
  }
  const until = node.circuitOpenUntilMs ? ` until ${clock(node.circuitOpenUntilMs)}` : '';
  const label = node.circuit === 'open' ? `open${until}` : 'half-open';
  return el('td', { class: `state ${node.circuit === 'open' ? 'bad' : 'warn'}` }, el('span', { 'aria-hidden': 'true' }, '\u25B2 '), label);
}

function modelsCell(node) {
  if (node.models.length === 0) return el('td', {}, 'none');
  return el(
    'td',
    {},
    el(
      'ul',
      { class: 'plain-list' },
      node.models.map((m) => el('li', {}, m.id, m.loaded ? el('span', { class: 'badge' }, 'loaded') : null)),
    ),
  );
}

function slotsText(slots) {
  return `${slots.used} / ${slots.cap === null ? 'no cap' : slots.cap}`;
}

function engineText(load) {
  if (!load) return UNKNOWN;
  const parts = [];
  if (load.running !== null) parts.push(`${load.running} running`);
  if (load.waiting !== null) parts.push(`${load.waiting} waiting`);
  if (load.kvCacheUsage !== null) parts.push(`KV ${Math.round(load.kvCacheUsage * 100)} %`);
  return parts.length ? parts.join(', ') : UNKNOWN;
}

function errorCell(error, nowMs) {
  if (!error) return el('td', { class: 'subtle' }, 'none');
  const source = error.source === 'probe' ? 'probe' : 'request';
  return el(
    'td',
    { class: 'error-text' },
    `${error.message} `,
    el('span', { class: 'subtle' }, `(${source}, `, timeAgo(error.atMs, nowMs), ')'),
  );
}

function nodeRow(node, nowMs) {
  const r = node.lastMinute;
  const saturated = node.slots.cap !== null && node.slots.used >= node.slots.cap;
  return el(
    'tr',
    { 'data-node': node.node, 'data-healthy': String(node.healthy), class: node.healthy ? null : 'row-bad' },
    el('th', { scope: 'row' }, node.node),
    el('td', {}, node.kind),
    healthCell(node),
    circuitCell(node),
    modelsCell(node),
    el('td', { class: saturated ? 'num warn' : 'num' }, slotsText(node.slots), saturated ? ' (full)' : ''),
    el('td', { class: 'num' }, node.queued === null ? UNKNOWN : num(node.queued)),
    el('td', {}, engineText(node.engineLoad)),
    el('td', { class: 'num' }, r ? num(r.requestsPerSec, 2) : UNKNOWN),
    el('td', { class: 'num' }, r ? pair(r.latencyMsP50, r.latencyMsP99) : UNKNOWN),
    el('td', { class: 'num' }, r ? pair(r.ttftMsP50, r.ttftMsP99) : UNKNOWN),
    el('td', { class: 'num' }, r ? num(r.tokensPerSec) : UNKNOWN),
    el('td', {}, timeAgo(node.lastProbeMs, nowMs), node.probeLatencyMs === null ? '' : ` (${ms(node.probeLatencyMs)})`),
    errorCell(node.lastError, nowMs),
  );
}

/** A relative time that refreshAges() keeps current without rebuilding its row. */
function timeAgo(atMs, nowMs) {
  return el('time', { datetime: iso(atMs), 'data-at': atMs }, ago(atMs, nowMs));
}

export function refreshAges(root, nowMs) {
  for (const time of root.querySelectorAll('time[data-at]')) time.textContent = ago(Number(time.dataset.at), nowMs);
}

/** Rows are rebuilt only when a node's data changed; the relative times are updated in place. */
export function renderFleet(tbody, state) {
  const nowMs = state.generatedAtMs;
  replaceIfChanged(tbody, JSON.stringify(state.fleet), () =>
    state.fleet.length === 0
      ? [el('tr', {}, el('td', { colspan: '14' }, 'No nodes yet: the monitor has not found any LLM server.'))]
      : state.fleet.map((node) => nodeRow(node, nowMs)),
  );
  refreshAges(tbody, nowMs);
}

export function renderModels(tbody, state) {
  replaceIfChanged(tbody, JSON.stringify(state.models), () =>
    state.models.length === 0
      ? [el('tr', {}, el('td', { colspan: '9' }, 'No models yet.'))]
      : state.models.map((model) => {
          const r = model.lastMinute;
          const nodes = model.nodes.map((n) => `${n.node}${n.healthy ? '' : ' (unhealthy)'}${n.loaded ? ' (loaded)' : ''}`);
          return el(
            'tr',
            { 'data-model': model.id },
            el('th', { scope: 'row' }, model.id),
            el(
              'td',
              {},
              el(
                'ul',
                { class: 'plain-list' },
                nodes.map((text) => el('li', {}, text)),
              ),
            ),
            el('td', { class: model.eligibleNodes === 0 ? 'num bad' : 'num' }, String(model.eligibleNodes)),
            el('td', { class: 'num' }, model.queued === null ? UNKNOWN : num(model.queued)),
            el('td', { class: 'num' }, r ? num(r.requestsPerSec, 2) : UNKNOWN),
            el('td', { class: r?.errors ? 'num bad' : 'num' }, r ? num(r.errors) : UNKNOWN),
            el('td', { class: 'num' }, r ? pair(r.latencyMsP50, r.latencyMsP99) : UNKNOWN),
            el('td', { class: 'num' }, r ? pair(r.ttftMsP50, r.ttftMsP99) : UNKNOWN),
            el('td', { class: 'num' }, r ? num(r.tokensPerSec) : UNKNOWN),
          );
        }),
  );
}

export function renderScan(parts, state) {
  const scan = state.scan;
  parts.note.textContent = scan
    ? `Started ${ago(scan.startedAtMs, state.generatedAtMs)} (${clock(scan.startedAtMs)}), took ${ms(scan.durationMs)}.`
    : 'This process has not run a scan: the monitor runs them (open its /dashboard for the scan).';
  const cards = scan
    ? [
        ['Targets probed', num(scan.targets)],
        ['LLM servers found', num(scan.found)],
        ['Nothing listening', num(scan.closed)],
        ...Object.entries(SKIP_REASON_TEXT).map(([reason, text]) => [`Skipped: ${text}`, num(scan.skippedByReason[reason] ?? 0)]),
      ]
    : [];
  replaceIfChanged(parts.summary, JSON.stringify(cards), () =>
    cards.map(([label, value]) => el('div', { class: 'card plain' }, el('dt', {}, label), el('dd', {}, value))),
  );
  const rows = scan ? scan.skipped : [];
  replaceIfChanged(parts.tbody, JSON.stringify([rows, scan?.more ?? 0, scan === null]), () => {
    if (!scan) return [el('tr', {}, el('td', { colspan: '3' }, 'No scan seen by this process.'))];
    if (rows.length === 0) return [el('tr', {}, el('td', { colspan: '3' }, 'Every target that answered is a node.'))];
    const out = rows.map((s) =>
      el('tr', {}, el('th', { scope: 'row' }, s.target), el('td', {}, SKIP_REASON_TEXT[s.reason] ?? s.reason), el('td', {}, s.detail)),
    );
    if (scan.more > 0) out.push(el('tr', {}, el('td', { colspan: '3' }, `and ${scan.more} more`)));
    return out;
  });
}
