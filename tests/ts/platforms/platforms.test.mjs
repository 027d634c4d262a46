// The TypeScript SDK's platform clients (@anthropic-ai/vertex-sdk, foundry-sdk, aws-sdk and
// bedrock-sdk's AnthropicBedrockMantle) through tapedeck's front doors (docs/platforms.md),
// beyond the conformance table (../conformance/platforms.test.mjs runs the table through each
// of them): Vertex with the `/v1` base URL replays the shipped cassettes and sees faults as the
// first-party client does, every client's miss names the first-party request, and a recording
// made through Vertex answers the first-party client.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import { AnthropicAws } from '@anthropic-ai/aws-sdk';
import { AnthropicBedrockMantle } from '@anthropic-ai/bedrock-sdk';
import { AnthropicFoundry } from '@anthropic-ai/foundry-sdk';
import { AnthropicVertex } from '@anthropic-ai/vertex-sdk';

import { startFakeUpstream, startTapedeck } from '../conformance/servers.mjs';
import { ROOT } from '../conformance/table.mjs';

const HELLO = { model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] };
// The request of the shipped streaming/tool-use cassette (cassettes/streaming/tool-use.yaml).
const TOOL_USE = {
  model: 'claude-sonnet-4-5',
  max_tokens: 1024,
  tools: [{
    name: 'get_weather',
    description: 'Get the current weather in a given location',
    input_schema: {
      type: 'object',
      properties: { location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' } },
      required: ['location'],
    },
  }],
  tool_choice: { type: 'any' },
  messages: [{ role: 'user', content: 'What is the weather like in San Francisco?' }],
};
// Recognisable fake credentials: the recording test looks for them on disk.
const GOOGLE_TOKEN = 'ya29.TS-PLATFORM-GOOGLE-TOKEN';
const FOUNDRY_KEY = 'foundry-TS-PLATFORM-KEY';
const AWS = { awsAccessKey: 'AKIDTSPLATFORM', awsSecretAccessKey: 'TS-AWS-SECRET', awsSessionToken: 'TS-AWS-SESSION-TOKEN', awsRegion: 'us-east-1' };

// The Vertex client asks google-auth for its headers on every request (`accessToken` does
// not skip it): a stand-in AuthClient gives a fixed bearer token, with no network.
const GOOGLE_AUTH = { projectId: 'p', getRequestHeaders: async () => new Headers({ authorization: `Bearer ${GOOGLE_TOKEN}` }) };

/** name -> (base URL, client options) -> a client */
const PLATFORMS = {
  vertex: (base, opts) => new AnthropicVertex({ baseURL: base, region: 'us-east5', projectId: 'p', authClient: GOOGLE_AUTH, ...opts }),
  'vertex-v1': (base, opts) => new AnthropicVertex({ baseURL: `${base}/v1`, region: 'us-east5', projectId: 'p', authClient: GOOGLE_AUTH, ...opts }),
  foundry: (base, opts) => new AnthropicFoundry({ baseURL: `${base}/anthropic/`, apiKey: FOUNDRY_KEY, ...opts }),
  'aws-sigv4': (base, opts) => new AnthropicAws({ baseURL: base, workspaceId: 'wrk', ...AWS, ...opts }),
  'mantle-sigv4': (base, opts) => new AnthropicBedrockMantle({ baseURL: `${base}/anthropic`, ...AWS, ...opts }),
};

function make(name, base, fault) {
  const opts = { maxRetries: 0, ...(fault ? { defaultHeaders: { 'x-tapedeck-fault': fault } } : {}) };
  return name === 'first-party' ? new Anthropic({ baseURL: base, apiKey: 'test-key', ...opts }) : PLATFORMS[name](base, opts);
}

/** What a call under a fault ends in: the error's class, status and error type, and the text before it. */
async function outcome(client, streamed) {
  let text = '';
  try {
    if (streamed) {
      const stream = client.messages.stream(HELLO);
      stream.on('text', (delta) => { text += delta; });
      await stream.finalMessage();
    } else {
      text = (await client.messages.create(HELLO)).content[0].text;
    }
  } catch (error) {
    return [error.constructor.name, error.status ?? null, error.error?.error?.type ?? null, text];
  }
  return ['ok', null, null, text];
}

describe('platform clients replay the shipped cassettes', () => {
  let server;
  before(async () => { server = await startTapedeck({ cassettes: `${ROOT}cassettes` }); });
  after(async () => { await server?.stop(); });

  for (const name of Object.keys(PLATFORMS)) {
    test(`${name}: a miss is the API's 404`, async () => {
      await assert.rejects(make(name, server.baseURL).messages.create({ ...HELLO, max_tokens: 7 }), (error) => {
        assert.equal(error.constructor.name, 'NotFoundError');
        assert.equal(error.status, 404);
        assert.equal(error.error.error.type, 'not_found_error');
        assert.match(error.message, /no cassette matches POST \/v1\/messages/);
        return true;
      });
    });
  }

  // The table runs the other base URLs; this one only here.
  for (const name of ['vertex-v1']) {
    test(`${name}: streaming/hello as JSON and streamed`, async () => {
      const client = make(name, server.baseURL);
      const made = await client.messages.create(HELLO);
      assert.equal(made.content[0].text, 'Hello!');
      const message = await client.messages.stream(HELLO).finalMessage();
      assert.equal(message.content[0].text, 'Hello!');
      assert.equal(message.model, 'claude-sonnet-4-5-20250929');
    });

    test(`${name}: streaming/tool-use`, async () => {
      const message = await make(name, server.baseURL).messages.stream(TOOL_USE).finalMessage();
      const tool = message.content.find((block) => block.type === 'tool_use');
      assert.equal(tool.name, 'get_weather');
      assert.deepEqual(tool.input, { location: 'San Francisco, CA', unit: 'fahrenheit' });
    });

    for (const [fault, streamed] of [['error:after=3,type=overloaded_error', true], ['disconnect:after=4', true], ['status:code=529', false]]) {
      test(`${name}: ${fault} (${streamed ? 'streamed' : 'JSON'}) as the first-party client sees it`, async () => {
        const expected = await outcome(make('first-party', server.baseURL, fault), streamed);
        assert.notEqual(expected[0], 'ok');
        assert.deepEqual(await outcome(make(name, server.baseURL, fault), streamed), expected);
      });
    }
  }
});

describe('a recording through Vertex answers the first-party client', () => {
  let upstream;
  let directory;
  before(async () => {
    upstream = await startFakeUpstream();
    directory = mkdtempSync(join(tmpdir(), 'tapedeck-platforms-'));
  });
  after(async () => {
    await upstream?.stop();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  test('recorded with mode once, replayed with mode none', async () => {
    const ask = { model: 'claude-fake-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'through vertex' }] };
    const recording = await startTapedeck({ cassettes: directory, mode: 'once', upstream: upstream.baseURL });
    let recorded;
    try {
      recorded = await make('vertex', recording.baseURL).messages.stream(ask).finalMessage();
    } finally {
      await recording.stop();
    }
    assert.equal(recorded.content[0].text, 'through vertex');
    const written = readdirSync(directory, { recursive: true })
      .filter((name) => name.endsWith('.yaml'))
      .map((name) => readFileSync(join(directory, name), 'utf8'))
      .join('\n');
    assert.match(written, /path: \/v1\/messages/);
    assert.doesNotMatch(written, /anthropic_version|ya29\./);
    const replaying = await startTapedeck({ cassettes: directory });
    try {
      const again = await make('first-party', replaying.baseURL).messages.stream(ask).finalMessage();
      assert.equal(again.content[0].text, recorded.content[0].text);
      const foundry = await make('foundry', replaying.baseURL).messages.create(ask);
      assert.equal(foundry.content[0].text, recorded.content[0].text);
    } finally {
      await replaying.stop();
    }
  });
});
