// The web view: the cassette library, one cassette's timelines, the live request journal.
// Everything comes from tapedeck's JSON admin endpoints; text from cassettes and requests
// is only ever set as textContent.

import { legend, markClass, timeline } from './timeline.js';

const API = '/_tapedeck';
const KEPT_ENTRIES = 500;
const state = { cassettes: [], entries: [] };

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path) {
  const response = await fetch(API + path, { headers: { accept: 'application/json' } });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error ? body.error.message : `${response.status}`);
  return body;
}

const ms = (v) => (v === null || v === undefined ? '–' : v >= 100 ? `${Math.round(v)} ms` : `${Number(v).toFixed(1)} ms`);
const size = (n) => (n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
const json = (v) => JSON.stringify(v, null, 2);

// --- the library ---------------------------------------------------------------------

function renderLibrary() {
  const wanted = document.getElementById('filter').value.trim().toLowerCase();
  const body = document.querySelector('#cassettes tbody');
  const rows = state.cassettes
    .filter((c) => !wanted || [c.name, c.description, ...c.kinds, ...c.models].join(' ').toLowerCase().includes(wanted))
    .map((c) => h('tr', { 'data-name': c.name, class: location.hash === `#${c.name}` ? 'selected' : '' },
      h('td', {}, h('a', { href: `#${c.name}` }, c.name)),
      h('td', { class: 'n' }, c.interactions),
      h('td', {}, c.kinds.map((k) => h('span', { class: `kind kind-${k}` }, k))),
      h('td', { class: 'n' }, c.events),
      h('td', { class: 'n' }, ms(c.duration_ms)),
      h('td', {}, c.recorded_at || '–'),
      h('td', { class: 'n' }, size(c.size))));
  body.replaceChildren(...rows);
  if (!rows.length) body.append(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'no cassette matches')));
}

// --- one cassette --------------------------------------------------------------------

function messageView(message, error) {
  if (error) return h('p', { class: 'problem' }, `the events do not assemble into a message: ${error}`);
  if (!message || typeof message !== 'object' || !Array.isArray(message.content)) {
    return h('pre', { class: 'json' }, typeof message === 'string' ? message : json(message));
  }
  const blocks = message.content.map((block, i) => {
    let content;
    if (block.type === 'text') content = h('p', { class: 'text' }, block.text);
    else if (block.type === 'thinking') content = h('p', { class: 'thinking' }, block.thinking);
    else if ('input' in block) content = h('pre', { class: 'json' }, `${block.name}(${json(block.input)})`);
    else content = h('pre', { class: 'json' }, json(block));
    return h('li', { class: `block block-${block.type}` }, h('span', { class: 'tag' }, `[${i}] ${block.type}`), content);
  });
  return h('div', { class: 'message' },
    h('ol', { class: 'blocks' }, blocks),
    h('p', { class: 'meta' }, `stop_reason ${message.stop_reason ?? '–'} · usage ${json(message.usage ?? {}).replace(/\s+/g, ' ')}`),
    h('details', {}, h('summary', {}, 'the message as JSON'), h('pre', { class: 'json' }, json(message))));
}

function eventTable(events, headers) {
  let previous = null;
  const rows = events.map((e) => {
    const at = headers + e.at_ms;
    const gap = previous === null ? '' : `+${ms(at - previous)}`;
    previous = at;
    return h('tr', { class: markClass(e) },
      h('td', { class: 'n' }, e.index), h('td', { class: 'n' }, ms(e.at_ms)), h('td', { class: 'n' }, gap),
      h('td', {}, h('span', { class: `swatch ${markClass(e)}` }), e.event),
      h('td', {}, e.block || ''), h('td', {}, e.delta || ''), h('td', { class: 'summary' }, e.summary));
  });
  return h('table', { class: 'events' },
    h('thead', {}, h('tr', {}, ['#', 'at (after headers)', 'gap', 'event', 'block', 'delta', 'data'].map((t) => h('th', {}, t)))),
    h('tbody', {}, rows));
}

function interactionView(item) {
  const { request, response } = item;
  const summary = [
    h('p', { class: 'request' }, h('b', {}, `${request.method} ${request.path}`), ` · ${request.model}`, request.stream ? ' · stream' : '',
      request.match ? ` · matches on ${request.match.join(', ')}` : ''),
    request.last_user !== null ? h('p', { class: 'user' }, h('span', { class: 'tag' }, 'last user message'), request.last_user) : null,
    request.tools.length ? h('p', { class: 'tools' }, h('span', { class: 'tag' }, 'tools'), request.tools.join(', ')) : null,
  ];
  const kinds = legend(response).map(([kind, label]) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${kind}` }), label));
  return h('article', { class: 'interaction', 'data-index': item.index },
    h('h3', {}, `interaction ${item.index}`, h('small', {}, ` line ${item.line}${item.recorded_at ? ` · recorded ${item.recorded_at}` : ''}`)),
    summary,
    h('p', { class: 'response' }, h('span', { class: `status s${Math.floor(response.status / 100)}xx` }, response.status),
      ` ${response.kind} · ${response.events ? `${response.events.length} events · ` : ''}headers ${ms(response.time_to_headers_ms)}`,
      response.first_event_ms !== null ? ` · first event ${ms(response.first_event_ms)}` : '', ` · ${response.ending} at ${ms(response.total_ms)}`),
    timeline(response),
    h('p', { class: 'legend' }, kinds),
    response.events ? h('details', { class: 'events-box', open: response.events.length <= 40 }, h('summary', {}, `${response.events.length} events`), eventTable(response.events, response.time_to_headers_ms)) : null,
    h('h4', {}, response.events ? 'the assembled message' : 'the body'),
    messageView(response.message, response.assemble_error));
}

async function showCassette(name) {
  const box = document.getElementById('cassette');
  document.querySelectorAll('#cassettes tr.selected').forEach((row) => row.classList.remove('selected'));
  if (!name) {
    box.hidden = true;
    return;
  }
  const row = [...document.querySelectorAll('#cassettes tbody tr')].find((r) => r.dataset.name === name);
  if (row) row.classList.add('selected');
  box.hidden = false;
  box.replaceChildren(h('p', { class: 'hint' }, `loading ${name}…`));
  try {
    const found = await api(`/cassettes/${name.split('/').map(encodeURIComponent).join('/')}`);
    const { cassette } = found;
    box.replaceChildren(
      h('h2', {}, cassette.name),
      h('p', { class: 'hint' }, cassette.path, cassette.description ? ` — ${cassette.description}` : ''),
      ...found.interactions.map(interactionView));
  } catch (error) {
    box.replaceChildren(h('p', { class: 'problem' }, String(error.message || error)));
  }
}

// --- the journal ---------------------------------------------------------------------

// Two long texts are shown around their first difference (the entry's `window`): the text
// just before it, then each side's text from it on, marked.
function excerpt(window, side) {
  const quote = (text) => JSON.stringify(text).slice(1, -1);
  return h('span', { class: 'window' },
    window.at > window.before.length ? '…' : '', quote(window.before),
    h('mark', {}, quote(window[side])));
}

function differences(miss) {
  if (!miss.differences.length) return null;
  const cell = (d, side) => {
    if (d.window) return excerpt(d.window, side);
    return side in d ? JSON.stringify(d[side]) : '(absent)';
  };
  const field = (d) => (d.window ? `${d.field} at char ${d.window.at.toLocaleString('en')}` : d.field);
  return h('table', { class: 'differences' },
    h('thead', {}, h('tr', {}, h('th', {}, 'field'), h('th', {}, 'the request sent'), h('th', {}, 'the cassette has'))),
    h('tbody', {}, miss.differences.map((d) => h('tr', {}, h('td', {}, field(d)), h('td', {}, cell(d, 'incoming')), h('td', {}, cell(d, 'recorded'))))));
}

function clientNote(miss) {
  const name = (c) => (c.release ? `${c.name} ${c.release}` : c.name);
  const { client, recorded_client: recorded } = miss;
  if (!client || !recorded || name(client) === name(recorded)) return null;
  return h('p', { class: 'client-note' }, `recorded with ${name(recorded)}; this request is from ${name(client)}`);
}

function answered(entry) {
  const name = entry.cassette ? `${entry.cassette}${entry.interaction === null ? '' : `#${entry.interaction}`}` : '';
  if (entry.source === 'miss' && entry.miss) {
    const m = entry.miss;
    if (m.reason !== 'no match') return `${m.reason} (${name})`;
    return m.cassette ? `closest ${m.cassette}#${m.interaction}` : 'nothing to compare with';
  }
  if (entry.source === 'error' && entry.error) return entry.error.message.replace(/^tapedeck: /, '');
  return name;
}

function entryView(entry) {
  const time = entry.at.slice(11, 23);
  const faults = entry.faults.map((f) => h('span', { class: 'fault' },
    f.spec, f.events === null ? '' : f.events.length ? ` @ ${f.events.join(', ')}` : ' (did not act)'));
  const broken = (entry.broken || []).map((b) => h('span', { class: 'broken', title: b.message }, `breaks ${b.rule}`));
  const miss = entry.miss && entry.miss.reason === 'no match'
    ? h('details', { class: 'miss', open: true }, h('summary', {}, entry.miss.where || 'why it missed'), clientNote(entry.miss), differences(entry.miss))
    : null;
  return h('li', { class: `entry source-${entry.source}`, 'data-id': entry.id, 'data-test-id': entry.test_id },
    h('div', { class: 'line' },
      h('span', { class: 'id' }, `#${entry.id}`), h('time', { datetime: entry.at }, time),
      h('b', {}, `${entry.method} ${entry.path}`),
      h('span', { class: `status s${Math.floor((entry.status || 0) / 100)}xx` }, entry.status ?? '–'),
      h('span', { class: `source source-${entry.source}` }, entry.source),
      h('span', { class: 'what' }, answered(entry))),
    h('div', { class: 'detail' },
      faults, broken, entry.stream ? `${entry.events} events · ` : '', `${entry.bytes} B · ${entry.end} · ${ms(entry.duration_ms)}`,
      entry.test_id ? h('span', { class: 'test-id' }, entry.test_id) : null),
    miss);
}

function renderJournal() {
  const wanted = document.getElementById('journal-filter').value.trim().toLowerCase();
  const list = document.getElementById('entries');
  const shown = state.entries
    .filter((e) => !wanted || JSON.stringify([e.path, e.source, e.cassette, e.test_id, e.status, e.faults, e.miss, e.broken]).toLowerCase().includes(wanted))
    .slice(-KEPT_ENTRIES).reverse().map(entryView);
  list.replaceChildren(...shown);
  if (!shown.length) list.append(h('li', { class: 'empty' }, 'no requests yet'));
}

function followJournal() {
  const live = document.getElementById('live');
  const source = new EventSource(`${API}/journal/stream?since=0`);
  source.addEventListener('open', () => { live.textContent = 'live'; live.className = 'live on'; });
  source.addEventListener('error', () => { live.textContent = 'reconnecting…'; live.className = 'live off'; });
  source.addEventListener('entry', (event) => {
    state.entries.push(JSON.parse(event.data));
    if (state.entries.length > KEPT_ENTRIES) state.entries.splice(0, state.entries.length - KEPT_ENTRIES);
    renderJournal();
  });
}

// --- start -------------------------------------------------------------------------------

async function start() {
  document.getElementById('filter').addEventListener('input', renderLibrary);
  document.getElementById('journal-filter').addEventListener('input', renderJournal);
  window.addEventListener('hashchange', () => showCassette(decodeURIComponent(location.hash.slice(1))));
  try {
    const health = await api('/health');
    document.getElementById('server').textContent = `${health.mode} mode · ${health.cassettes} cassettes · ${location.host}`;
    state.cassettes = (await api('/cassettes')).cassettes;
  } catch (error) {
    document.getElementById('server').textContent = `cannot reach tapedeck: ${error.message || error}`;
    return;
  }
  renderLibrary();
  renderJournal();
  followJournal();
  if (location.hash.length > 1) showCassette(decodeURIComponent(location.hash.slice(1)));
  document.body.dataset.ready = 'true';
}

start();
