// A response's timeline as SVG, drawn here rather than by a charting library: one mark per
// event at its offset is a few dozen lines of DOM calls, and each mark stays an element a
// test can count and a person can hover for its details.

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 1000;
const HEIGHT = 124;
const LEFT = 24;
const RIGHT = 70;
const BASE = 86; // the axis
const TOP = 26;

// The colour class of an event: its content block's type, or what kind of event it is.
export function markClass(event) {
  if (event.event === 'ping') return 'ping';
  if (event.event === 'error') return 'error';
  if (event.event.startsWith('message')) return 'message';
  const block = event.block || 'other';
  return /^[a-z_]+$/.test(block) ? `block-${block}` : 'block-other';
}

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Round numbers for the axis: about six ticks over [0, span].
function ticks(span) {
  const raw = span / 6;
  const power = 10 ** Math.floor(Math.log10(raw || 1));
  const step = [1, 2, 5, 10].map((f) => f * power).find((s) => s >= raw) || power;
  const out = [];
  for (let t = 0; t <= span + 1e-9; t += step) out.push(t);
  return out;
}

function ms(value) {
  return value >= 100 || Number.isInteger(value) ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`;
}

// Gaps worth pointing at: much longer than the stream's usual gap, and at least 20 ms.
function longGaps(times) {
  const gaps = [];
  for (let i = 1; i < times.length; i += 1) gaps.push({ i, gap: times[i] - times[i - 1] });
  const sorted = gaps.map((g) => g.gap).sort((a, b) => a - b);
  const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : 0;
  return gaps.filter((g) => g.gap >= 20 && g.gap >= 3 * median).sort((a, b) => b.gap - a.gap).slice(0, 3);
}

// The chart of one interaction's response (as GET /_tapedeck/cassettes/NAME gives it).
export function timeline(response) {
  const events = response.events || [];
  const headers = response.time_to_headers_ms || 0;
  const times = events.map((e) => headers + e.at_ms);
  const end = response.total_ms;
  const span = Math.max(end, headers, ...times, 1);
  const x = (t) => LEFT + (t / span) * (WIDTH - LEFT - RIGHT);
  const svg = el('svg', {
    class: 'timeline',
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': `timeline: headers at ${ms(headers)}, ${events.length} events, ${response.end} at ${ms(end)}`,
  });

  const axis = el('g', { class: 'axis' });
  axis.append(el('line', { x1: x(0), x2: x(span), y1: BASE, y2: BASE }));
  for (const t of ticks(span)) {
    axis.append(el('line', { x1: x(t), x2: x(t), y1: BASE, y2: BASE + 4 }));
    axis.append(el('text', { x: x(t), y: BASE + 16, 'text-anchor': 'middle' }, ms(t)));
  }
  svg.append(axis);

  // Time to headers: a band from the request to the headers.
  const band = el('rect', {
    class: 'ttfb', x: x(0), y: BASE - 8, width: Math.max(x(headers) - x(0), 1), height: 8,
  });
  band.append(el('title', {}, `headers after ${ms(headers)}`));
  svg.append(band, el('text', { class: 'label', x: x(0), y: BASE - 12 }, `headers ${ms(headers)}`));

  // One mark per event.
  const marks = el('g', { class: 'marks' });
  events.forEach((event, i) => {
    const kind = markClass(event);
    const tall = kind === 'ping' ? 18 : kind === 'error' ? 56 : 40;
    const mark = el('rect', {
      class: `mark ${kind}`,
      'data-index': i,
      x: x(times[i]) - 1,
      y: BASE - 10 - tall,
      width: 2,
      height: tall,
    });
    const gap = i ? ` (+${ms(times[i] - times[i - 1])})` : '';
    const what = event.block ? ` ${event.block}` : '';
    mark.append(el('title', {}, `#${i} ${event.event}${what} at ${ms(times[i])}${gap}${event.summary ? `: ${event.summary}` : ''}`));
    marks.append(mark);
  });
  if (!response.events) {
    const body = el('rect', { class: 'body', x: x(headers) - 2, y: BASE - 50, width: 4, height: 40 });
    body.append(el('title', {}, `the whole body at ${ms(headers)}`));
    marks.append(body);
  }
  svg.append(marks);

  for (const { i, gap } of longGaps(times)) {
    const a = x(times[i - 1]);
    const b = x(times[i]);
    const g = el('g', { class: 'gap' });
    g.append(el('line', { x1: a, x2: b, y1: TOP - 6, y2: TOP - 6 }));
    g.append(el('text', { x: (a + b) / 2, y: TOP - 10, 'text-anchor': 'middle' }, `gap ${ms(gap)}`));
    svg.append(g);
  }

  // The end of the response: complete, error, cut or incomplete.
  const finish = el('g', { class: `end end-${response.end}` });
  finish.append(el('line', { x1: x(end), x2: x(end), y1: TOP, y2: BASE }));
  finish.append(el('text', { x: x(end) + 4, y: TOP + 10 }, response.end));
  finish.append(el('text', { x: x(end) + 4, y: TOP + 24 }, ms(end)));
  svg.append(finish);
  return svg;
}

// The colours used in a chart, for its legend.
export function legend(response) {
  const seen = new Map();
  for (const event of response.events || []) {
    const kind = markClass(event);
    if (!seen.has(kind)) seen.set(kind, kind.replace(/^block-/, ''));
  }
  return [...seen.entries()];
}
