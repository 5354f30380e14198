// The traffic charts: small SVG line charts written here rather than a chart library.
// Why: a dozen polylines need ~100 lines; SVG keeps every chart a real element with a
// text alternative (role="img" + title/desc read by screen readers, where a canvas library
// such as uPlot draws pixels), styles it from the page's own stylesheet under a strict CSP,
// and adds no vendored code to keep up to date. Series differ by dash pattern as well as
// colour, so colour is never the only way to tell them apart.
import { el, svg } from './dom.js';
import { clock, num } from './format.js';

const WIDTH = 320;
const HEIGHT = 112;
const PLOT = { left: 36, right: 314, top: 8, bottom: 90 };
const DASHES = [null, '6 4', '2 3'];
const PARTIAL_MIN_MS = 3000;

/** What each chart shows: a title, the unit, and its series (a value per traffic point). */
export const CHARTS = [
  {
    id: 'requests',
    title: 'Requests per second',
    unit: 'requests/s',
    series: [{ name: 'requests/s', value: (p) => p.requestsPerSec }],
  },
  {
    id: 'status',
    title: 'Responses by status class (per 10 s)',
    unit: 'responses',
    series: [
      { name: '2xx', value: (p) => p.status2xx },
      { name: '4xx', value: (p) => p.status4xx },
      { name: '5xx', value: (p) => p.status5xx },
    ],
  },
  {
    id: 'failovers',
    title: 'Failovers and 429s (per 10 s)',
    unit: 'count',
    series: [
      { name: 'failovers', value: (p) => p.failovers },
      { name: '429s', value: (p) => p.rejected429 },
    ],
  },
  {
    id: 'queue',
    title: 'Requests that waited for a slot (per 10 s)',
    unit: 'requests',
    series: [{ name: 'waited', value: (p) => p.queued }],
  },
  {
    id: 'latency',
    title: 'Latency (ms)',
    unit: 'ms',
    series: [
      { name: 'p50', value: (p) => p.latencyMsP50 },
      { name: 'p99', value: (p) => p.latencyMsP99 },
    ],
  },
];

/** Creates the empty figures once; renderCharts fills them on every update. */
export function createCharts(container) {
  for (const chart of CHARTS) {
    const legend = el(
      'ul',
      { class: 'legend' },
      chart.series.map((s, i) =>
        el(
          'li',
          {},
          svg(
            'svg',
            { width: 24, height: 8, 'aria-hidden': 'true', class: `series-${i}` },
            svg('line', { x1: 0, y1: 4, x2: 24, y2: 4, 'stroke-dasharray': DASHES[i] }),
          ),
          ` ${s.name}`,
        ),
      ),
    );
    const figure = el(
      'figure',
      { class: 'chart', id: `chart-${chart.id}` },
      el('figcaption', {}, el('span', { class: 'chart-title', id: `chart-${chart.id}-title` }, chart.title), legend),
      svg('svg', {
        viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
        role: 'img',
        'aria-labelledby': `chart-${chart.id}-title chart-${chart.id}-desc`,
      }),
      el('p', { class: 'visually-hidden', id: `chart-${chart.id}-desc` }),
    );
    container.append(figure);
  }
}

/** A round upper bound for the y axis: 1, 2, 5 × 10^n. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function describe(chart, series, points) {
  return chart.series
    .map((s, i) => {
      const values = series[i];
      let peak = null;
      values.forEach((v, at) => {
        if (v !== null && (peak === null || v > values[peak])) peak = at;
      });
      const now = values.at(-1);
      if (peak === null) return `${s.name}: no data`;
      return `${s.name}: now ${num(now)}, peak ${num(values[peak])} at ${clock(points[peak].startMs)}`;
    })
    .join('; ');
}

/**
 * A series as lines through its consecutive known values. A gap (a bucket without requests
 * has no latency) breaks the line rather than bridging it, and a value alone between gaps
 * is a dot: with sparse traffic most latency points are alone, and a line needs two.
 */
function seriesMarks(values, i, x, y) {
  const marks = [];
  let run = [];
  const flush = () => {
    if (run.length === 1) {
      marks.push(svg('circle', { class: `dot series-${i}`, cx: run[0][0], cy: run[0][1], r: 2.2 }));
    } else if (run.length > 1) {
      marks.push(
        svg('polyline', {
          class: `line series-${i}`,
          'stroke-dasharray': DASHES[i],
          points: run.map(([px, py]) => `${px},${py}`).join(' '),
        }),
      );
    }
    run = [];
  };
  values.forEach((v, at) => {
    if (v === null) flush();
    else run.push([x(at).toFixed(1), y(v).toFixed(1)]);
  });
  flush();
  return marks;
}

export function renderCharts(container, traffic) {
  for (const chart of CHARTS) {
    const figure = container.querySelector(`#chart-${chart.id}`);
    const plot = figure.querySelector('svg[role="img"]');
    const desc = figure.querySelector(`#chart-${chart.id}-desc`);
    if (!traffic) {
      plot.replaceChildren();
      desc.textContent = 'No traffic data in this process.';
      continue;
    }
    // The current bucket is drawn once it holds a few seconds: a 0.5 s-old bucket would
    // show a false drop to zero at "now" on every refresh.
    const last = traffic.points.at(-1);
    const points = last && last.durationMs < PARTIAL_MIN_MS ? traffic.points.slice(0, -1) : traffic.points;
    const series = chart.series.map((s) => points.map((p) => s.value(p)));
    const max = niceMax(Math.max(0, ...series.flat().filter((v) => v !== null)));
    const x = (i) => PLOT.left + ((PLOT.right - PLOT.left) * i) / Math.max(points.length - 1, 1);
    const y = (v) => PLOT.bottom - ((PLOT.bottom - PLOT.top) * v) / max;
    const minutes = Math.round(traffic.windowMs / 60_000);
    plot.replaceChildren(
      svg('line', { class: 'axis', x1: PLOT.left, y1: PLOT.bottom, x2: PLOT.right, y2: PLOT.bottom }),
      svg('line', { class: 'grid', x1: PLOT.left, y1: PLOT.top, x2: PLOT.right, y2: PLOT.top }),
      svg('text', { class: 'tick', x: PLOT.left - 4, y: PLOT.top + 4, 'text-anchor': 'end' }, num(max)),
      svg('text', { class: 'tick', x: PLOT.left - 4, y: PLOT.bottom + 3, 'text-anchor': 'end' }, '0'),
      svg('text', { class: 'tick', x: PLOT.left, y: HEIGHT - 4 }, `-${minutes} min`),
      svg('text', { class: 'tick', x: PLOT.right, y: HEIGHT - 4, 'text-anchor': 'end' }, 'now'),
      ...series.flatMap((values, i) => seriesMarks(values, i, x, y)),
    );
    desc.textContent = `${chart.title}, last ${minutes} minutes. ${describe(chart, series, points)}.`;
  }
}
