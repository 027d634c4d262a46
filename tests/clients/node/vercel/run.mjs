// Runs Vercel AI SDK calls (`ai` + `@ai-sdk/anthropic`) and prints what the SDK made of
// each as one JSON line: its result, or the error it threw, with the HTTP attempts it made.
//
//   node run.mjs '[{"baseURL": "http://127.0.0.1:PORT/v1", "call": "stream", ...}, ...]'
//
// A job: baseURL (with /v1, as createAnthropic wants it), call ("generate" for generateText,
// "stream" for streamText), prompt, tools (true: a get_weather tool, run in a loop of up to
// maxSteps steps), headers (sent with every request, e.g. x-tapedeck-fault),
// maxRetries, timeout (ms, or {totalMs, chunkMs, ...} as the SDK takes it).
import { createAnthropic } from '@ai-sdk/anthropic';
import { generateText, isStepCount, jsonSchema, streamText, tool } from 'ai';

const MODEL = 'claude-sonnet-4-5';

const weather = tool({
  description: 'The weather in a city now',
  inputSchema: jsonSchema({
    type: 'object',
    properties: { city: { type: 'string' } },
    required: ['city'],
    additionalProperties: false,
  }),
  execute: async ({ city }) => (city === 'Paris' ? '18 degrees and sunny' : 'unknown'),
});

// An error as plain data: its class, message, status, retry decision and causes.
function describe(error, depth = 0) {
  if (error == null || depth > 3) return null;
  if (typeof error !== 'object') return { value: String(error) };
  const out = { name: error.name ?? error.constructor?.name, message: error.message };
  if (error.constructor?.name && error.constructor.name !== out.name) out.class = error.constructor.name;
  for (const key of ['statusCode', 'isRetryable', 'reason', 'type', 'code']) {
    if (error[key] !== undefined) out[key] = error[key];
  }
  if (error.data !== undefined) out.data = error.data;
  if (error.responseHeaders) {
    out.retryHeaders = Object.fromEntries(
      Object.entries(error.responseHeaders).filter(([k]) => k.startsWith('retry-after') || k.startsWith('anthropic-ratelimit-requests-rem')),
    );
  }
  if (Array.isArray(error.errors)) out.errors = error.errors.map((e) => describe(e, depth + 1));
  if (error.lastError) out.lastError = describe(error.lastError, depth + 1);
  if (error.cause) out.cause = describe(error.cause, depth + 1);
  return out;
}

function stepOf(step) {
  return {
    text: step.text,
    finishReason: step.finishReason,
    toolCalls: step.toolCalls.map((c) => ({ id: c.toolCallId, name: c.toolName, input: c.input })),
    toolResults: step.toolResults.map((r) => ({ id: r.toolCallId, output: r.output })),
    responseId: step.response?.id,
    usage: { input: step.usage?.inputTokens, output: step.usage?.outputTokens },
  };
}

async function run(job) {
  let attempts = 0;
  const provider = createAnthropic({
    baseURL: job.baseURL,
    apiKey: 'test-key',
    headers: job.headers ?? {},
    fetch: (url, init) => {
      attempts += 1;
      return fetch(url, init);
    },
  });
  const options = {
    model: provider(MODEL),
    prompt: job.prompt ?? 'Say hello',
    maxRetries: job.maxRetries ?? 0,
    ...(job.timeout != null ? { timeout: job.timeout } : {}),
    ...(job.tools ? { tools: { get_weather: weather }, stopWhen: isStepCount(job.maxSteps ?? 3) } : {}),
  };
  if (job.call === 'generate') {
    try {
      const result = await generateText(options);
      return { ok: true, attempts, text: result.text, finishReason: result.finishReason, steps: result.steps.map(stepOf) };
    } catch (error) {
      return { ok: false, attempts, error: describe(error) };
    }
  }
  // streamText reports errors as parts of the stream, and rejects its promises after them.
  const parts = [];
  const streamErrors = [];
  let text = '';
  const result = streamText({ ...options, onError: () => {} });
  try {
    for await (const part of result.fullStream) {
      if (part.type === 'text-delta') text += part.text;
      if (part.type === 'error') streamErrors.push(describe(part.error));
      if (parts.at(-1) !== part.type) parts.push(part.type);
    }
  } catch (error) {
    return { ok: false, attempts, text, parts, streamErrors, error: describe(error) };
  }
  let steps;
  let finishReason;
  try {
    steps = (await result.steps).map(stepOf);
    finishReason = await result.finishReason;
  } catch (error) {
    return { ok: streamErrors.length === 0, attempts, text, parts, streamErrors, finishError: describe(error) };
  }
  return { ok: streamErrors.length === 0, attempts, text, parts, streamErrors, finishReason, steps };
}

const jobs = JSON.parse(process.argv[2]);
const results = [];
for (const job of jobs) results.push(await run(job));
process.stdout.write(`${JSON.stringify(results)}\n`);
