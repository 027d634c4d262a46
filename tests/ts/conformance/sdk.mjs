// One step of the conformance table made with @anthropic-ai/sdk, and what the SDK showed:
// the same outcome fields as the Python suite's tests/conformance_sdk.py.
//
// The SDK is the package CONFORMANCE_SDK names (default @anthropic-ai/sdk): package.json also
// installs the oldest supported release under an alias, for `npm run test:floor`. A platform's
// client (platforms.mjs) is made by the `make` its caller passes instead.

export const SDK_PACKAGE = process.env.CONFORMANCE_SDK || '@anthropic-ai/sdk';
const { default: Anthropic } = await import(SDK_PACKAGE);
/** The installed release of that package, which picks the table's entries for it. */
export const { VERSION } = await import(`${SDK_PACKAGE}/version`);

// How long any step may wait for response headers unless its case says otherwise.
const DEFAULT_TIMEOUT_MS = 10_000;

// The SDK warns on the console about the model names of the documented example streams
// (`console.warn`, not its logger); the Python suite ignores the same warning.
const warn = console.warn;
console.warn = (...args) => {
  const text = String(args[0]);
  if (text.startsWith("The model '") || text.startsWith('Using Claude with')) return;
  warn(...args);
};

/** An SDK value (a message, a list) as plain JSON data. */
function plain(value) {
  return JSON.parse(JSON.stringify(value));
}

/** A page of a list call as the API sent it. */
function page(value) {
  return plain({ data: value.data, has_more: value.has_more, first_id: value.first_id, last_id: value.last_id });
}

/** Response headers as a plain object (lower-case names). */
function headersOf(headers) {
  return Object.fromEntries(headers.entries());
}

function errorOutcome(error) {
  if (error === null) return { error: null, status: null, error_type: null, error_message: null, cause: null };
  const body = error.error;
  return {
    error: error.constructor.name,
    status: error.status ?? null,
    error_type: (body && typeof body.error === 'object' && body.error?.type) || null,
    error_message: error.message,
    cause: error.cause ? error.cause.constructor.name : null,
    // The headers of the response the error came with.
    ...(error.headers instanceof Headers && { headers: headersOf(error.headers) }),
  };
}

/**
 * The body of an event stream, with the names of its SSE events noted in `wire` as the SDK reads
 * them (pings included): what was on the wire. Errors and cancellation pass through unchanged.
 */
function tapped(body, wire) {
  const decoder = new TextDecoder();
  let pending = '';
  return body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      const blocks = (pending + decoder.decode(chunk, { stream: true })).split(/\r\n\r\n|\n\n|\r\r/);
      pending = blocks.pop();
      for (const block of blocks) {
        for (const line of block.split(/\r\n|\n|\r/)) {
          if (line.startsWith('event:')) wire.push(line.slice(6).trim());
        }
      }
      controller.enqueue(chunk);
    },
  }));
}

/**
 * The body of an AWS event stream (Bedrock's framing), with the type of the first-party event
 * each `chunk` message carries noted in `wire`, and `error` for an `exception` message: the
 * events the SDK's decoder turns into SSE. A message is a prelude (total length, headers length,
 * its CRC), headers (name, type 7 string values here), the payload and a CRC.
 */
function tappedEventStream(body, wire) {
  let pending = new Uint8Array(0);
  const text = new TextDecoder();
  const note = (message) => {
    const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
    const headersEnd = 12 + view.getUint32(4);
    const headers = {};
    for (let at = 12; at < headersEnd;) {
      const nameLength = message[at];
      const name = text.decode(message.subarray(at + 1, at + 1 + nameLength));
      at += 1 + nameLength;
      if (message[at] !== 7) return; // only string headers are expected; anything else is not noted
      const valueLength = view.getUint16(at + 1);
      headers[name] = text.decode(message.subarray(at + 3, at + 3 + valueLength));
      at += 3 + valueLength;
    }
    if (headers[':message-type'] !== 'event') {
      wire.push('error');
      return;
    }
    try {
      const { bytes } = JSON.parse(text.decode(message.subarray(headersEnd, message.length - 4)));
      wire.push(JSON.parse(Buffer.from(bytes, 'base64').toString('utf8')).type ?? '?');
    } catch {
      wire.push('?'); // a garbled chunk: the SDK fails on it
    }
  };
  return body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      const joined = new Uint8Array(pending.length + chunk.length);
      joined.set(pending);
      joined.set(chunk, pending.length);
      let at = 0;
      while (joined.length - at >= 4) {
        const total = new DataView(joined.buffer, at).getUint32(0);
        if (joined.length - at < total) break;
        note(joined.subarray(at, at + total));
        at += total;
      }
      pending = joined.slice(at);
      controller.enqueue(chunk);
    },
  }));
}

/** The first-party client of the SDK package this suite runs. */
export function firstParty(baseURL, options) {
  return new Anthropic({ baseURL, apiKey: 'tapedeck-conformance', ...options });
}

function clientFor(baseURL, kase, step, count, make, extraHeaders) {
  const headers = { ...extraHeaders, 'x-tapedeck-test-id': kase.testId };
  if (step.fault !== null && step.faultScope === 'request') headers['x-tapedeck-fault'] = step.fault;
  if (step.timing !== null) headers['x-tapedeck-timing'] = step.timing;
  return make(baseURL, {
    maxRetries: step.client.max_retries ?? 0,
    timeout: step.client.timeout_ms ?? DEFAULT_TIMEOUT_MS,
    defaultHeaders: headers,
    logLevel: 'off',
    fetch: async (url, init) => {
      count.requests += 1;
      const response = await fetch(url, init);
      const type = response.headers.get('content-type') ?? '';
      const tap = type.startsWith('text/event-stream') ? tapped
        : type.startsWith('application/vnd.amazon.eventstream') ? tappedEventStream : null;
      if (!response.ok || !response.body || !tap) return response;
      // The same response with its body read through the tap. A new Response, not the old one's
      // `body` replaced: the platform clients' middleware refuses a response whose body was read.
      const { status, statusText, headers } = response;
      const wrapped = new Response(tap(response.body, count.wire), { status, statusText, headers });
      Object.defineProperty(wrapped, 'url', { value: response.url });
      return wrapped;
    },
  });
}

async function call(client, step, out) {
  const { body } = step;
  const options = step.signalTimeoutMs !== null ? { signal: AbortSignal.timeout(step.signalTimeoutMs) } : {};
  switch (step.call) {
    case 'stream': {
      const stream = client.messages.stream(body, options);
      out.message = plain(await stream.finalMessage());
      out.text = await stream.finalText();
      return;
    }
    case 'raw': {
      out.events = [];
      const stream = await client.messages.create({ ...body, stream: true }, options);
      for await (const event of stream) out.events.push(event.type);
      return;
    }
    case 'create': {
      const { data, response } = await client.messages.create(body, options).withResponse();
      out.headers = headersOf(response.headers);
      out.message = plain(data);
      return;
    }
    case 'count_tokens':
      out.result = plain(await client.messages.countTokens(body, options));
      return;
    case 'models.list':
      out.result = page(await client.models.list(body, options));
      return;
    case 'models.retrieve':
      out.result = plain(await client.models.retrieve(body.model_id, {}, options));
      return;
    case 'batches.create':
      out.result = plain(await client.messages.batches.create(body, options));
      return;
    case 'batches.retrieve':
      out.result = plain(await client.messages.batches.retrieve(body.batch_id, {}, options));
      return;
    case 'batches.list':
      out.result = page(await client.messages.batches.list(body, options));
      return;
    case 'batches.results': {
      const results = [];
      for await (const item of await client.messages.batches.results(body.batch_id, {}, options)) {
        results.push(item);
      }
      out.result = plain(results);
      return;
    }
    default:
      throw new Error(`unknown call ${step.call}`);
  }
}

/** Make `step`'s call against tapedeck at `baseURL` with the client `make` makes, sending
 * `extraHeaders` too; what the SDK showed. */
export async function perform(baseURL, kase, step, make = firstParty, extraHeaders = {}) {
  const count = { requests: 0, wire: [] };
  const out = { events: null, message: null, text: null, result: null, headers: null };
  let error = null;
  if (step.advanceClockS !== null) {
    // Stop the case's clock and move it ahead: quota windows move only when told.
    await admin(baseURL, kase, 'POST', 'clock', { advance_s: step.advanceClockS });
  }
  const started = performance.now();
  try {
    await call(clientFor(baseURL, kase, step, count, make, extraHeaders), step, out);
  } catch (caught) {
    error = caught;
  }
  const tookMs = Math.round(performance.now() - started);
  return {
    ...out,
    ...errorOutcome(error),
    retries: count.requests - 1,
    wire: count.wire.length ? count.wire : null,
    took_ms: tookMs,
  };
}

async function admin(baseURL, kase, method, path, body) {
  const response = await fetch(`${baseURL}/_tapedeck/${path}`, {
    method,
    headers: { 'x-tapedeck-test-id': kase.testId, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} /_tapedeck/${path}: ${response.status} ${await response.text()}`);
}

/** Every step of `kase`, in order, with the case's test id and the client `make` makes (the
 * first-party one unless given), sending `extraHeaders` too; their outcomes. */
export async function run(baseURL, kase, make = firstParty, extraHeaders = {}) {
  // Rewind the case's sequences and fault counters, so a rerun starts clean.
  await admin(baseURL, kase, 'POST', 'reset');
  const scoped = [...new Set(kase.steps.filter((s) => s.faultScope === 'test').map((s) => s.fault))];
  if (scoped.length > 1) throw new Error(`${kase.id}: one test-scoped fault spec per case`);
  for (const spec of scoped) await admin(baseURL, kase, 'PUT', 'faults', { faults: spec });
  try {
    const outcomes = [];
    for (const step of kase.steps) outcomes.push(await perform(baseURL, kase, step, make, extraHeaders));
    return outcomes;
  } finally {
    if (scoped.length) await admin(baseURL, kase, 'DELETE', 'faults');
  }
}
