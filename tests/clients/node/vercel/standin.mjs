// A stand-in for the Messages API on 127.0.0.1, for the Vercel AI SDK tests: it answers
// like the API and, when asked, fails like it, so that what the SDK sees from a fault
// tapedeck injects can be compared with what it sees when the upstream itself fails.
//
//   node standin.mjs        prints "standin on http://127.0.0.1:PORT", stops when stdin closes
//
// POST /v1/messages is answered by where the conversation is:
//   - tools offered and no tool result yet: a sentence and a `tool_use` of the first tool
//     with {"city": "Paris"} (stop_reason tool_use);
//   - the last user turn holds a tool result: "In Paris it is <result>." (end_turn);
//   - otherwise: "Hello from the stand-in: <the user's words>" (end_turn).
// Streamed when "stream" is true (a ping after the first block starts, one text delta per
// word, tool input in two input_json_delta pieces), else one JSON message. Message ids count
// requests, so a re-recording differs from the last one.
//
// The request header x-tapedeck-fault takes one fault in tapedeck's spec syntax
// (docs/faults.md), and the stand-in does to its own answer what that fault describes, with
// code of its own, not tapedeck's — the same request sent to tapedeck and to the stand-in
// shows a client the same failure twice, once from each. x-standin-fault does the same and
// passes through tapedeck (which keeps x-tapedeck-* headers to itself), for an upstream that
// fails while tapedeck records:
//   ping:every=N  error:after=N[,type=T][,message=M]  overloaded:after=N  disconnect:after=N
//   truncate:after=N  status:code=C[,retry_after=S][,retry_after_ms=MS][,times=K]
//   latency:ms=MS  stall:after=N,ms=MS  garble:after=N  quota:requests=L/Ws
// Event positions count the answer's own events (a ping it adds does not count).
// `times` and quota buckets are kept per spec until POST /_standin/reset.
// GET /_standin/requests lists the bodies received (each with the fault header it carried).
import http from 'node:http';

const MESSAGES = {
  overloaded_error: 'Overloaded',
  rate_limit_error: 'Rate limited',
  api_error: 'Internal server error',
  timeout_error: 'Request timed out',
};
const TYPES = { 400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error',
  404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error',
  504: 'timeout_error', 529: 'overloaded_error' };

let serial = 0;
let counters = new Map();
let buckets = new Map();
let received = [];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function parseFault(spec) {
  if (!spec) return null;
  const [kind, rest = ''] = spec.split(':');
  const keys = {};
  for (const part of rest.split(',').filter(Boolean)) {
    const [key, value] = part.split('=');
    keys[key.trim()] = value.trim();
  }
  return { kind: kind.trim(), keys, spec };
}

function lastUser(body) {
  const user = [...body.messages].reverse().find((m) => m.role === 'user');
  const parts = typeof user.content === 'string' ? [{ type: 'text', text: user.content }] : user.content;
  return parts;
}

function answer(body) {
  serial += 1;
  const parts = lastUser(body);
  const result = parts.find((p) => p.type === 'tool_result');
  const tools = body.tools ?? [];
  let content;
  let stop = 'end_turn';
  if (result) {
    const value = typeof result.content === 'string' ? result.content
      : result.content.map((c) => c.text ?? '').join('');
    content = [{ type: 'text', text: `In Paris it is ${value}.` }];
  } else if (tools.length) {
    content = [
      { type: 'text', text: 'Let me look that up.' },
      { type: 'tool_use', id: `toolu_standin_${serial}`, name: tools[0].name, input: { city: 'Paris' } },
    ];
    stop = 'tool_use';
  } else {
    const words = parts.filter((p) => p.type === 'text').map((p) => p.text).join(' ');
    content = [{ type: 'text', text: `Hello from the stand-in: ${words}` }];
  }
  const words = content.reduce((n, c) => n + (c.text ?? '').split(' ').length, 0);
  return {
    id: `msg_standin_${String(serial).padStart(4, '0')}`,
    type: 'message',
    role: 'assistant',
    model: body.model,
    content,
    stop_reason: stop,
    stop_sequence: null,
    usage: { input_tokens: 20 + 3 * body.messages.length, output_tokens: words + 4 },
  };
}

function events(message) {
  const start = { ...message, content: [], stop_reason: null, usage: { ...message.usage, output_tokens: 1 } };
  const out = [['message_start', { type: 'message_start', message: start }]];
  message.content.forEach((block, index) => {
    if (block.type === 'text') {
      out.push(['content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }]);
      if (index === 0) out.push(['ping', { type: 'ping' }]);
      const words = block.text.split(' ');
      words.forEach((w, i) => out.push(['content_block_delta', {
        type: 'content_block_delta', index, delta: { type: 'text_delta', text: i < words.length - 1 ? `${w} ` : w },
      }]));
    } else {
      out.push(['content_block_start', { type: 'content_block_start', index, content_block: { ...block, input: {} } }]);
      const json = JSON.stringify(block.input);
      const cut = Math.floor(json.length / 2);
      for (const piece of [json.slice(0, cut), json.slice(cut)]) {
        out.push(['content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } }]);
      }
    }
    out.push(['content_block_stop', { type: 'content_block_stop', index }]);
  });
  out.push(['message_delta', {
    type: 'message_delta',
    delta: { stop_reason: message.stop_reason, stop_sequence: null },
    usage: { output_tokens: message.usage.output_tokens },
  }]);
  out.push(['message_stop', { type: 'message_stop' }]);
  return out;
}

const sse = (name, data) => `event: ${name}\ndata: ${data}\n\n`;

function errorJson(res, status, type, message, headers = {}) {
  const body = JSON.stringify({ type: 'error', error: { type, message }, request_id: `req_standin_${serial}` });
  res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_standin_${serial}`, ...headers });
  res.end(body);
}

// What a status or quota fault answers instead of the message, or null to answer it.
function refusal(fault) {
  if (fault?.kind === 'status') {
    const used = counters.get(fault.spec) ?? 0;
    counters.set(fault.spec, used + 1);
    if (fault.keys.times && used >= Number(fault.keys.times)) return null;
    const code = Number(fault.keys.code ?? 529);
    const headers = {};
    if (fault.keys.retry_after) headers['retry-after'] = fault.keys.retry_after;
    if (fault.keys.retry_after_ms) headers['retry-after-ms'] = fault.keys.retry_after_ms;
    if (fault.keys.should_retry) headers['x-should-retry'] = fault.keys.should_retry;
    const type = TYPES[code] ?? (code < 500 ? 'invalid_request_error' : 'api_error');
    return { code, type, message: fault.keys.message ?? MESSAGES[type] ?? type, headers };
  }
  if (fault?.kind === 'quota') {
    // One bucket of `requests` per window, refilled continuously, as the API's limits are.
    const [limit, window] = fault.keys.requests.split('/');
    const seconds = parseFloat(window);
    const now = Date.now() / 1000;
    const bucket = buckets.get(fault.spec) ?? { left: Number(limit), at: now };
    bucket.left = Math.min(Number(limit), bucket.left + ((now - bucket.at) * Number(limit)) / seconds);
    bucket.at = now;
    buckets.set(fault.spec, bucket);
    if (bucket.left >= 1) {
      bucket.left -= 1;
      return null;
    }
    const wait = Math.ceil(((1 - bucket.left) * seconds) / Number(limit));
    return {
      code: 429,
      type: 'rate_limit_error',
      message: `This request would exceed the rate limit for your organization of ${limit} requests per minute.`,
      headers: { 'retry-after': String(wait), 'anthropic-ratelimit-requests-limit': limit,
        'anthropic-ratelimit-requests-remaining': '0' },
    };
  }
  return null;
}

async function stream(res, message, fault) {
  const after = Number(fault?.keys.after ?? 0);
  const list = events(message);
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache',
    'request-id': `req_standin_${serial}` });
  res.flushHeaders();
  // Each write waits until it has left (Node holds writes of one tick back together), so
  // that a disconnect cuts the connection after what was sent, as an upstream's would.
  const send = (text) => new Promise((resolve) => res.write(text, resolve));
  await new Promise((resolve) => setImmediate(resolve));
  let garbled = false;
  for (let i = 0; i <= list.length; i++) {
    if (i === after) {
      if (fault?.kind === 'error' || fault?.kind === 'overloaded') {
        const type = fault.kind === 'overloaded' ? 'overloaded_error' : (fault.keys.type ?? 'overloaded_error');
        const error = { type, message: fault.keys.message ?? MESSAGES[type] ?? type };
        res.end(sse('error', JSON.stringify({ type: 'error', error })));
        return;
      }
      if (fault?.kind === 'truncate') return void res.end();
      if (fault?.kind === 'disconnect') return void res.socket.destroy();
      if (fault?.kind === 'stall') await sleep(Number(fault.keys.ms));
    }
    if (i === list.length) break;
    const [name, data] = list[i];
    let text = JSON.stringify(data);
    if (fault?.kind === 'garble' && !garbled && i >= after && name !== 'ping') {
      text = text.slice(0, Math.floor(text.length / 2));
      garbled = true;
    }
    await send(sse(name, text));
    if (fault?.kind === 'ping' && (i + 1) % Number(fault.keys.every) === 0) await send(sse('ping', '{"type":"ping"}'));
  }
  res.end();
}

async function messages(req, res, raw) {
  const body = JSON.parse(raw);
  const fault = parseFault(req.headers['x-tapedeck-fault'] ?? req.headers['x-standin-fault']);
  received.push({ body, fault: fault?.spec ?? null });
  const refused = refusal(fault);
  if (refused) return errorJson(res, refused.code, refused.type, refused.message, refused.headers);
  if (fault?.kind === 'latency') await sleep(Number(fault.keys.ms));
  const message = answer(body);
  if (body.stream) return stream(res, message, fault);
  res.writeHead(200, { 'content-type': 'application/json', 'request-id': `req_standin_${serial}` });
  res.end(JSON.stringify(message));
}

const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => { raw += chunk; });
  req.on('end', () => {
    const path = req.url.split('?')[0];
    if (req.method === 'POST' && path === '/v1/messages') {
      messages(req, res, raw).catch((error) => { console.error(error); res.destroy(); });
    } else if (path === '/_standin/reset') {
      counters = new Map();
      buckets = new Map();
      received = [];
      res.end('{}');
    } else if (path === '/_standin/requests') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(received));
    } else {
      errorJson(res, 404, 'not_found_error', `no route ${req.method} ${path}`);
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  console.log(`standin on http://127.0.0.1:${server.address().port}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
