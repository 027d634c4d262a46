// The conformance table (tests/conformance/cases.json), read with the same rules as the Python
// suite's tests/conformance_table.py: a case is one step or a list of `steps` that inherit the
// case's fields; what this SDK must show is `expect` with the `typescript` keys laid over it;
// an outcome matches when every expected key matches, and a call not expected to fail must not.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const TABLE = `${ROOT}tests/conformance/cases.json`;
export const SDK = 'typescript';

const CALLS = new Set([
  'stream', 'raw', 'create', 'count_tokens', 'models.list', 'models.retrieve',
  'batches.create', 'batches.retrieve', 'batches.list', 'batches.results',
]);
const EXPECT_KEYS = new Set([
  'error', 'status', 'error_type', 'error_message', 'cause', 'events', 'message', 'text', 'result',
  'retries',
]);
const STEP_KEYS = new Set([
  'call', 'request', 'fault', 'fault_scope', 'timing', 'client', 'signal_timeout_ms', 'expect',
  'python', 'typescript',
]);
const CASE_KEYS = new Set(['id', 'why', 'smoke', 'sdks', 'steps', ...STEP_KEYS]);

function unknownKeys(object, known) {
  return Object.keys(object).filter((key) => !known.has(key));
}

function fail(message) {
  throw new Error(`${TABLE}: ${message}`);
}

function makeStep(name, raw, requests) {
  if (unknownKeys(raw, STEP_KEYS).length) fail(`${name}: unknown step keys ${unknownKeys(raw, STEP_KEYS)}`);
  if (!CALLS.has(raw.call)) fail(`${name}: call ${raw.call} is not one of ${[...CALLS]}`);
  const expect = { ...(raw.expect ?? {}), ...(raw[SDK] ?? {}) };
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
  };
}

function makeCase(raw, requests) {
  const name = raw.id ?? '?';
  if (unknownKeys(raw, CASE_KEYS).length) fail(`${name}: unknown keys ${unknownKeys(raw, CASE_KEYS)}`);
  const base = Object.fromEntries(Object.entries(raw).filter(([key]) => STEP_KEYS.has(key)));
  const steps = (raw.steps ?? [{}]).map((step) => makeStep(name, { ...base, ...step }, requests));
  return {
    id: name,
    steps,
    smoke: Boolean(raw.smoke),
    sdks: raw.sdks ?? ['python', 'typescript'],
    // The x-tapedeck-test-id of the case's requests: the same in both suites.
    testId: `conformance/${name}`,
  };
}

/** The replay cases and the record → replay cases this SDK runs. */
export function load() {
  const table = JSON.parse(readFileSync(TABLE, 'utf8'));
  const mine = (cases) =>
    cases.map((raw) => makeCase(raw, table.requests)).filter((kase) => kase.sdks.includes(SDK));
  return { replay: mine(table.cases), roundTrip: mine(table.round_trip) };
}

/** `["a", "b*3"]` → `["a", "b", "b", "b"]`. */
export function expandEvents(names) {
  return names.flatMap((name) => {
    const [base, count] = name.split('*');
    return Array(count ? Number(count) : 1).fill(base);
  });
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
  for (let [key, want] of Object.entries(withBaseURL(expect, baseURL))) {
    const got = outcome[key];
    if (key === 'events') want = expandEvents(want);
    if (key === 'error_message') {
      if (!(got ?? '').includes(want)) found.push(`error_message: ${show(want)} not in ${show(got)}`);
    } else if (key === 'message' || key === 'result') {
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
    Object.entries(outcome).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length)),
  );
  return JSON.stringify(shown).slice(0, 1500);
}
