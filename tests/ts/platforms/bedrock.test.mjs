// @anthropic-ai/bedrock-sdk's AnthropicBedrock against the real tapedeck server's Bedrock front
// door: the shipped streaming/hello streamed and as JSON, a miss, and every fault as Bedrock
// delivers it (tests/test_platform_bedrock.py checks the same with the Python client, and the
// wire bytes).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { AnthropicBedrock } from '@anthropic-ai/bedrock-sdk';
import { APIConnectionError, APIConnectionTimeoutError, APIError, AnthropicError, InternalServerError, NotFoundError, RateLimitError } from '@anthropic-ai/sdk';

import { startTapedeck } from '../conformance/servers.mjs';
import { ROOT } from '../conformance/table.mjs';

const HELLO = { model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] };

function bedrock(baseURL, options = {}) {
  return new AnthropicBedrock({
    awsAccessKey: 'k',
    awsSecretKey: 's',
    awsRegion: 'us-east-1',
    baseURL,
    maxRetries: 0,
    ...options,
  });
}

const fault = (spec) => ({ headers: { 'x-tapedeck-fault': spec } });

async function streamed(client, spec) {
  const stream = client.messages.stream(HELLO, spec ? fault(spec) : undefined);
  return stream.finalMessage();
}

describe('AnthropicBedrock (TypeScript) through the Bedrock front door', () => {
  let server;
  let client;
  before(async () => {
    server = await startTapedeck({ cassettes: `${ROOT}cassettes` });
    client = bedrock(server.baseURL);
  });
  after(() => server?.stop());

  it('replays streaming/hello streamed', async () => {
    const message = await streamed(client);
    assert.equal(message.content[0].text, 'Hello!');
  });

  it('replays streaming/hello as JSON', async () => {
    const { data, response } = await client.messages.create(HELLO).withResponse();
    assert.equal(data.content[0].text, 'Hello!');
    assert.equal(response.headers.get('content-type'), 'application/json');
  });

  it('sees a miss as a 404 ResourceNotFoundException with tapedeck\'s message', async () => {
    const ask = { ...HELLO, messages: [{ role: 'user', content: 'never recorded' }] };
    const error = await client.messages.create(ask).then(() => null, (e) => e);
    assert.ok(error instanceof NotFoundError, String(error));
    assert.equal(error.headers.get('x-amzn-errortype'), 'ResourceNotFoundException');
    assert.match(error.error.message, /^tapedeck: no cassette matches/);
  });

  for (const [spec, message] of [['overloaded:after=2', 'Overloaded'], ['error:after=2,type=api_error,message=broke', 'broke']]) {
    it(`sees ${spec} as a modelStreamErrorException`, async () => {
      const error = await streamed(client, spec).then(() => null, (e) => e);
      assert.ok(error instanceof APIError, String(error));
      assert.equal(error.status, undefined);
      assert.equal(error.type, 'modelStreamErrorException');
      assert.match(error.message, new RegExp(message));
    });
  }

  for (const [code, klass, status, type] of [
    [529, InternalServerError, 503, 'ServiceUnavailableException'],
    [429, RateLimitError, 429, 'ThrottlingException'],
  ]) {
    it(`sees status ${code} as Bedrock's ${status} ${type}`, async () => {
      for (const call of [() => streamed(client, `status:code=${code}`), () => client.messages.create(HELLO, fault(`status:code=${code}`))]) {
        const error = await call().then(() => null, (e) => e);
        assert.ok(error instanceof klass, String(error));
        assert.equal(error.status, status);
        assert.equal(error.headers.get('x-amzn-errortype'), type);
      }
    });
  }

  it('retries Bedrock\'s 503 and gets the answer', async () => {
    const retrying = bedrock(server.baseURL, { maxRetries: 2 });
    const message = await retrying.messages.create(HELLO, fault('status:code=529,times=1,retry_after_ms=1'));
    assert.equal(message.content[0].text, 'Hello!');
  });

  it('sees a disconnect as a connection error', async () => {
    const error = await streamed(client, 'disconnect:after=3').then(() => null, (e) => e);
    assert.ok(error instanceof APIConnectionError, String(error));
  });

  it('sees a truncated stream as the helper does first-party', async () => {
    const error = await streamed(client, 'truncate:after=4').then(() => null, (e) => e);
    assert.ok(error instanceof AnthropicError, String(error));
  });

  it('skips pings', async () => {
    const message = await streamed(client, 'ping:every=1');
    assert.equal(message.content[0].text, 'Hello!');
  });

  it('sees a garbled event as a chunk it cannot parse', async () => {
    const error = await streamed(client, 'garble:after=1').then(() => null, (e) => e);
    assert.ok(error instanceof AnthropicError, String(error));
    assert.match(String(error.message), /Could not parse a Bedrock chunk into JSON/);
  });

  it('times out on latency as first-party', async () => {
    const impatient = bedrock(server.baseURL, { timeout: 300 });
    const error = await impatient.messages.create(HELLO, fault('latency:ms=5000')).then(() => null, (e) => e);
    assert.ok(error instanceof APIConnectionTimeoutError, String(error));
  });

  it('reads on after a stall, as first-party (this SDK never times out mid-body)', async () => {
    const message = await streamed(client, 'stall:after=2,ms=200');
    assert.equal(message.content[0].text, 'Hello!');
  });

  it('sees a used-up quota as a ThrottlingException', async () => {
    const spec = 'quota:requests=1/60s';
    const headers = { 'x-tapedeck-fault': spec, 'x-tapedeck-test-id': 'ts-bedrock-quota' };
    await client.messages.create(HELLO, { headers });
    const error = await client.messages.create(HELLO, { headers }).then(() => null, (e) => e);
    assert.ok(error instanceof RateLimitError, String(error));
    assert.equal(error.headers.get('x-amzn-errortype'), 'ThrottlingException');
  });
});
