// Recording THROUGH Bedrock with @anthropic-ai/bedrock-sdk: tapedeck (--upstream-form platform)
// signs the client's request again for the stand-in (tests/platform_standins.py), which
// verifies the SigV4 signature with the known keys tapedeck has in its environment, and answers
// as Bedrock does (an event stream). The cassette is first-party: the first-party client and
// Bedrock again replay it; no credential is on disk. tests/test_platforms_upstream.py checks the
// same with the Python clients.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import Anthropic from '@anthropic-ai/sdk';
import { AnthropicBedrock } from '@anthropic-ai/bedrock-sdk';

import { startPlatformStandIn, startTapedeck } from '../conformance/servers.mjs';

// tests/platform_standins.py's UPSTREAM_AWS: tapedeck signs with these, the stand-in checks them.
const UPSTREAM_AWS = {
  AWS_ACCESS_KEY_ID: 'AKIDUPSTREAMEXAMPLE7',
  AWS_SECRET_ACCESS_KEY: 'UPSTREAM-AWS-SECRET-7',
  AWS_SESSION_TOKEN: 'UPSTREAM-AWS-SESSION-TOKEN-7',
};
const CLIENT_AWS = { awsAccessKey: 'AKIDCLIENTTSEXAMPLE', awsSecretKey: 'CLIENT-TS-SECRET', awsSessionToken: 'CLIENT-TS-SESSION-TOKEN' };
const SECRETS = [...Object.values(UPSTREAM_AWS), ...Object.values(CLIENT_AWS), 'AWS4-HMAC-SHA256', 'Signature='];
const MODEL = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5';
const ask = (text) => ({ model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: text }] });

function bedrock(baseURL) {
  return new AnthropicBedrock({ ...CLIENT_AWS, awsRegion: 'us-east-1', baseURL, maxRetries: 0 });
}

function everything(dir) {
  const out = [];
  for (const name of readdirSync(dir, { recursive: true })) {
    const path = join(dir, name);
    out.push(name);
    if (statSync(path).isFile()) out.push(readFileSync(path, 'utf8'));
  }
  return out.join('\n');
}

describe('AnthropicBedrock (TypeScript) recording through Bedrock', () => {
  let standin;
  let dir;
  const saved = {};
  before(async () => {
    for (const [name, value] of Object.entries({
      ...UPSTREAM_AWS, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/dev/null', AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    })) {
      saved[name] = process.env[name];
      process.env[name] = value; // tapedeck, started below, inherits them
    }
    standin = await startPlatformStandIn();
    dir = mkdtempSync(join(tmpdir(), 'tapedeck-record-bedrock-'));
  });
  after(async () => {
    await standin?.stop();
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records a signed stream and JSON, first-party, and replays them to every client', async () => {
    const recording = await startTapedeck({
      cassettes: dir, mode: 'once', upstream: standin.baseURL, extra: ['--upstream-form', 'platform'],
    });
    let streamed;
    let made;
    try {
      const client = bedrock(recording.baseURL);
      streamed = await client.messages.stream(ask('signed again streamed')).finalMessage();
      made = await client.messages.create(ask('signed again whole'));
    } finally {
      await recording.stop();
    }
    assert.equal(streamed.content[0].text, 'signed again streamed');
    assert.equal(made.content[0].text, 'signed again whole');
    const written = everything(dir);
    assert.match(written, /path: \/v1\/messages/);
    assert.doesNotMatch(written, /x-amzn|vnd\.amazon\.eventstream/);
    for (const secret of SECRETS) assert.ok(!written.includes(secret), `${secret} on disk`);

    const replaying = await startTapedeck({ cassettes: dir });
    try {
      const firstParty = new Anthropic({ apiKey: 'dummy', baseURL: replaying.baseURL, maxRetries: 0 });
      const again = await firstParty.messages.stream(ask('signed again streamed')).finalMessage();
      assert.equal(again.content[0].text, streamed.content[0].text);
      const whole = await bedrock(replaying.baseURL).messages.create(ask('signed again whole'));
      assert.equal(whole.content[0].text, made.content[0].text);
    } finally {
      await replaying.stop();
    }
  });
});
