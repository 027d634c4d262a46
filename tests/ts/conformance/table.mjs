// The conformance table (tests/conformance/cases.json), read with the same rules as the Python
// suite's tests/conformance_table.py: a case is one step or a list of `steps` that inherit the
// case's fields; it runs through every platform client that has its calls, or those its
// `platforms` names; what this SDK's client for a platform must show is `expect` with the
// `typescript` key, the platform's (`bedrock`) and `typescript:<platform>` laid over it in that
// order (each an object, or a list of objects of which those whose `releases` range holds the
// installed release, or that have none, are laid over in order); an outcome matches when every
// expected key matches, and a call not expected to fail must not.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TABLE = `${ROOT}tests/conformance/cases.json`;
export const SDK = 'typescript';
const SDKS = ['python', 'typescript'];
/** The platform clients a case runs through (tests/conformance/README.md, "Platforms"). */
export const FIRST_PARTY = 'anthropic';
export const PLATFORMS = [FIRST_PARTY, 'bedrock', 'vertex', 'google_cloud', 'foundry', 'mantle', 'aws'];

const CALLS = new Set([
  'stream', 'raw', 'create', 'count_tokens', 'models.list', 'models.retrieve',
  'batches.create', 'batches.retrieve', 'batches.list', 'batches.results',
]);
const EXPECT_KEYS = new Set([
  'error', 'status', 'error_type', 'error_message', 'cause', 'events', 'message', 'text', 'result',
  'retries', 'headers', 'wire', 'took_ms',
]);
const MESSAGES = ['stream', 'raw', 'create'];
/** The calls each platform's client has (both SDKs): a case with any other call skips it. */
const PLATFORM_CALLS = {
  anthropic: CALLS,
  bedrock: new Set(MESSAGES),
  vertex: new Set([...MESSAGES, 'count_tokens']),
  google_cloud: CALLS,
  foundry: new Set([...MESSAGES, 'count_tokens']),
  mantle: new Set([...MESSAGES, 'count_tokens']),
  aws: CALLS,
};
// An SDK's entry may also say which releases it is for.
const RELEASES = 'releases';
// The keys laid over `expect`: per SDK, per platform, per SDK on a platform.
const LAYER_KEYS = new Set([...SDKS, ...PLATFORMS, ...SDKS.flatMap((sdk) => PLATFORMS.map((p) => `${sdk}:${p}`))]);
const STEP_KEYS = new Set([
  'call', 'request', 'fault', 'fault_scope', 'timing', 'client', 'signal_timeout_ms',
  'advance_clock_s', 'expect', ...LAYER_KEYS,
]);
const CASE_KEYS = new Set(['id', 'why', 'smoke', 'sdks', 'platforms', 'steps', ...STEP_KEYS]);

function unknownKeys(object, known) {
  return Object.keys(object).filter((key) => !known.has(key));
}

function fail(message) {
  throw new Error(`${TABLE}: ${message}`);
}

// --- release ranges -------------------------------------------------------------------------

/** A release's numbers, for comparing: "1.17.0" → [1, 17] (trailing zeros dropped, so 1.17 and
 * 1.17.0 are one release; a suffix such as "-beta.1" is ignored). */
export function releaseKey(version) {
  const found = /^\d+(?:\.\d+)*/.exec(version);
  if (!found) fail(`not a release number: ${version}`);
  const parts = found[0].split('.').map(Number);
  while (parts.length > 1 && parts.at(-1) === 0) parts.pop();
  return parts;
}

function compareReleases(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (i >= a.length) return -1;
    if (i >= b.length) return 1;
    if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}

const COMPARE = {
  '>=': (c) => c >= 0, '<=': (c) => c <= 0, '==': (c) => c === 0, '>': (c) => c > 0, '<': (c) => c < 0,
};

/** Whether `release` is in `releases`: comparisons joined by ",", all of which must hold
 * (">=1.17", "<1.17", ">=1.0, <1.17"). */
export function inReleases(release, releases) {
  const key = releaseKey(release);
  return releases.split(',').map((clause) => {
    const found = /^\s*(>=|<=|==|>|<)\s*(\d+(?:\.\d+)*)\s*$/.exec(clause);
    if (!found) fail(`${releases}: '${clause.trim()}' is not a comparison such as >=1.17`);
    return COMPARE[found[1]](compareReleases(key, releaseKey(found[2])));
  }).every(Boolean);
}

/** An SDK's entries of a step, checked: an object, or a list of objects, each with an optional
 * `releases` range. */
function layers(name, spec) {
  const all = spec == null ? [] : Array.isArray(spec) ? spec : [spec];
  for (const layer of all) {
    if (!isObject(layer)) fail(`${name}: an SDK entry must be an object, got ${show(layer)}`);
    const unknown = Object.keys(layer).filter((key) => !EXPECT_KEYS.has(key) && key !== RELEASES);
    if (unknown.length) fail(`${name}: unknown expectations ${unknown}`);
    if (RELEASES in layer) inReleases('0', layer[RELEASES]); // its syntax, whichever release runs
  }
  return all;
}

/** An SDK's entries for `release`, laid over one another in order: those whose `releases`
 * holds it, and those without a range. */
export function forRelease(name, spec, release) {
  const found = {};
  for (const { [RELEASES]: releases, ...layer } of layers(name, spec)) {
    if (releases === undefined || inReleases(release, releases)) Object.assign(found, layer);
  }
  return found;
}

function makeStep(name, raw, requests, release, platform) {
  if (unknownKeys(raw, STEP_KEYS).length) fail(`${name}: unknown step keys ${unknownKeys(raw, STEP_KEYS)}`);
  if (!CALLS.has(raw.call)) fail(`${name}: call ${raw.call} is not one of ${[...CALLS]}`);
  for (const key of LAYER_KEYS) layers(name, raw[key]); // every layer, not only this client's
  const expect = { ...(raw.expect ?? {}) };
  for (const layer of [SDK, platform, `${SDK}:${platform}`]) Object.assign(expect, forRelease(name, raw[layer], release));
  if (unknownKeys(expect, EXPECT_KEYS).length) fail(`${name}: unknown expectations ${unknownKeys(expect, EXPECT_KEYS)}`);
  const request = raw.request ?? {};
  return {
    call: raw.call,
    body: typeof request === 'string' ? requests[request] : request,
    expect,
    fault: raw.fault ?? null,
    faultScope: raw.fault_scope ?? 'request',
    timing: raw.timing ?? null,
    client: raw.client ?? {},
    signalTimeoutMs: raw.signal_timeout_ms ?? null,
    advanceClockS: raw.advance_clock_s ?? null,
  };
}

function makeCase(raw, requests, release, platform) {
  const name = raw.id ?? '?';
  if (unknownKeys(raw, CASE_KEYS).length) fail(`${name}: unknown keys ${unknownKeys(raw, CASE_KEYS)}`);
  const base = Object.fromEntries(Object.entries(raw).filter(([key]) => STEP_KEYS.has(key)));
  const merged = (raw.steps ?? [{}]).map((step) => ({ ...base, ...step }));
  const platforms = raw.platforms ?? PLATFORMS.filter((p) => merged.every((step) => PLATFORM_CALLS[p].has(step.call)));
  const wrong = platforms.filter((p) => !PLATFORMS.includes(p));
  if (wrong.length) fail(`${name}: platforms ${wrong} are not among ${PLATFORMS}`);
  for (const step of merged) {
    const stray = Object.keys(step)
      .filter((key) => LAYER_KEYS.has(key) && !SDKS.includes(key))
      .map((key) => key.split(':').at(-1))
      .filter((p) => !platforms.includes(p));
    if (stray.length) fail(`${name}: expectations for ${[...new Set(stray)]}, where the case does not run`);
  }
  const steps = merged.map((step) => makeStep(name, step, requests, release, platform));
  return {
    id: name,
    steps,
    smoke: Boolean(raw.smoke),
    sdks: raw.sdks ?? SDKS,
    platforms,
    // The x-tapedeck-test-id of the case's requests: the same in both suites.
    testId: `conformance/${name}`,
  };
}

/** The replay cases and the record → replay cases this SDK's client for `platform` runs, as
 * release `release` must see them. */
export function load(release, platform = FIRST_PARTY) {
  if (!PLATFORMS.includes(platform)) fail(`${platform} is not one of ${PLATFORMS}`);
  const table = JSON.parse(readFileSync(TABLE, 'utf8'));
  const mine = (cases) =>
    cases
      .map((raw) => makeCase(raw, table.requests, release, platform))
      .filter((kase) => kase.sdks.includes(SDK) && kase.platforms.includes(platform));
  return { replay: mine(table.cases), roundTrip: mine(table.round_trip) };
}

// --- matching --------------------------------------------------------------------------------

/** Whether the event names `got` are `want`: "name*N" stands for N in a row, "name*N+" for N or
 * more. */
export function eventsMatch(want, got) {
  if (!Array.isArray(got)) return false;
  const escape = (text) => text.replace(/[.*+?^$|()[\]{}\\]/g, '\\$&');
  const pattern = want.map((name) => {
    const [base, count = '1'] = name.split('*');
    const times = count.endsWith('+') ? `{${count.slice(0, -1)},}` : `{${count}}`;
    return `(?:${escape(base)}\n)${times}`;
  }).join('');
  return new RegExp(`^${pattern}$`).test(got.map((name) => `${name}\n`).join(''));
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function show(value) {
  return JSON.stringify(value) ?? String(value);
}

/** Where `got` differs from `want`: objects need only `want`'s keys (`null` also matches a
 * missing key), arrays must have the same length, everything else be equal. */
export function subsetProblems(want, got, path = '') {
  if (isObject(want)) {
    if (!isObject(got)) return [`${path || '.'}: expected an object, got ${show(got)}`];
    return Object.entries(want).flatMap(([key, value]) => {
      if (value === null && got[key] == null) return [];
      if (!(key in got)) return [`${path}.${key}: missing`];
      return subsetProblems(value, got[key], `${path}.${key}`);
    });
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length) {
      return [`${path || '.'}: expected ${want.length} items, got ${show(got)}`];
    }
    return want.flatMap((item, i) => subsetProblems(item, got[i], `${path}[${i}]`));
  }
  return want === got ? [] : [`${path || '.'}: expected ${show(want)}, got ${show(got)}`];
}

/** `value` with `{base_url}` in its strings replaced by the server's address. */
export function withBaseURL(value, baseURL) {
  if (typeof value === 'string') return value.replaceAll('{base_url}', baseURL);
  if (Array.isArray(value)) return value.map((item) => withBaseURL(item, baseURL));
  if (isObject(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withBaseURL(v, baseURL)]));
  }
  return value;
}

/** Every way `outcome` (what the SDK showed) falls short of `expect`. */
export function problems(expect, outcome, baseURL) {
  const found = [];
  if (!('error' in expect) && outcome.error !== null) {
    found.push(`error: none expected, got ${outcome.error}: ${outcome.error_message}`);
  }
  for (const [key, want] of Object.entries(withBaseURL(expect, baseURL))) {
    const got = outcome[key];
    if (key === 'events' || key === 'wire') {
      if (!eventsMatch(want, got)) found.push(`${key}: expected ${show(want)}, got ${show(got)}`);
    } else if (key === 'took_ms') {
      if (!(got >= want)) found.push(`took_ms: expected the call to take at least ${want} ms, got ${got}`);
    } else if (key === 'error_message') {
      if (!(got ?? '').includes(want)) found.push(`error_message: ${show(want)} not in ${show(got)}`);
    } else if (key === 'message' || key === 'result' || key === 'headers') {
      found.push(...subsetProblems(want, got).map((p) => `${key}${p}`));
    } else if (show(got) !== show(want)) {
      found.push(`${key}: expected ${show(want)}, got ${show(got)}`);
    }
  }
  return found;
}

/** An outcome as short readable text, for failure messages. */
export function pretty(outcome) {
  const shown = Object.fromEntries(
    Object.entries(outcome).filter(
      ([k, v]) => v !== null && !(Array.isArray(v) && !v.length) && k !== 'headers',
    ),
  );
  return JSON.stringify(shown).slice(0, 1500);
}

/** Assert that every step's outcome in `outcomes` shows what the step expects. */
export function check(kase, outcomes, baseURL, client = 'the SDK') {
  kase.steps.forEach((step, n) => {
    const found = problems(step.expect, outcomes[n], baseURL);
    const where = kase.steps.length > 1 ? `${kase.id} step ${n + 1} (${step.call})` : kase.id;
    assert.deepEqual(found, [], `${where}: ${found.join('; ')}\n  ${client} showed: ${pretty(outcomes[n])}`);
  });
}

/** Outcomes without what two servers giving the same answer may differ in: the headers (dates,
 * and where the answer came from; `expect` checks those that matter) and how long the call took.
 * The server's address is `{base_url}`, its host:port `{host}`. */
export function sameAcrossServers(outcomes, baseURL) {
  return JSON.parse(
    JSON.stringify(outcomes.map(({ headers, took_ms: took, ...rest }) => rest))
      .replaceAll(baseURL, '{base_url}')
      .replaceAll(new URL(baseURL).host, '{host}'),
  );
}
