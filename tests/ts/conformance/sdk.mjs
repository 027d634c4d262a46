// One step of the conformance table made with @anthropic-ai/sdk, and what the SDK showed:
// the same outcome fields as the Python suite's tests/conformance_sdk.py.
//
// The SDK is the package CONFORMANCE_SDK names (default @anthropic-ai/sdk): package.json also
// installs the oldest supported release under an alias, for `npm run test:floor`.

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

function clientFor(baseURL, kase, step, count) {
  const headers = { 'x-tapedeck-test-id': kase.testId };
  if (step.fault !== null && step.faultScope === 'request') headers['x-tapedeck-fault'] = step.fault;
  if (step.timing !== null) headers['x-tapedeck-timing'] = step.timing;
  return new Anthropic({
    baseURL,
    apiKey: 'tapedeck-conformance',
    maxRetries: step.client.max_retries ?? 0,
    timeout: step.client.timeout_ms ?? DEFAULT_TIMEOUT_MS,
    defaultHeaders: headers,
    logLevel: 'off',
    fetch: async (url, init) => {
      count.requests += 1;
      const response = await fetch(url, init);
      if (response.ok && response.body && response.headers.get('content-type')?.startsWith('text/event-stream')) {
        // The SDK reads an event stream through `body` only; the rest of the response is as sent.
        Object.defineProperty(response, 'body', { value: tapped(response.body, count.wire) });
      }
      return response;
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

/** Make `step`'s call against tapedeck at `baseURL`; what the SDK showed. */
export async function perform(baseURL, kase, step) {
  const count = { requests: 0, wire: [] };
  const out = { events: null, message: null, text: null, result: null, headers: null };
  let error = null;
  if (step.advanceClockS !== null) {
    // Stop the case's clock and move it ahead: quota windows move only when told.
    await admin(baseURL, kase, 'POST', 'clock', { advance_s: step.advanceClockS });
  }
  const started = performance.now();
  try {
    await call(clientFor(baseURL, kase, step, count), step, out);
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

/** Every step of `kase`, in order, with the case's test id; their outcomes. */
export async function run(baseURL, kase) {
  // Rewind the case's sequences and fault counters, so a rerun starts clean.
  await admin(baseURL, kase, 'POST', 'reset');
  const scoped = [...new Set(kase.steps.filter((s) => s.faultScope === 'test').map((s) => s.fault))];
  if (scoped.length > 1) throw new Error(`${kase.id}: one test-scoped fault spec per case`);
  for (const spec of scoped) await admin(baseURL, kase, 'PUT', 'faults', { faults: spec });
  try {
    const outcomes = [];
    for (const step of kase.steps) outcomes.push(await perform(baseURL, kase, step));
    return outcomes;
  } finally {
    if (scoped.length) await admin(baseURL, kase, 'DELETE', 'faults');
  }
}
