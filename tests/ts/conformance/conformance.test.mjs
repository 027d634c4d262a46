// The conformance table (tests/conformance/cases.json) through the official TypeScript SDK,
// against the real tapedeck server: the same cases the Python suite (tests/test_conformance.py)
// runs through the Python SDK.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { VERSION } from '@anthropic-ai/sdk/version';

import { run } from './sdk.mjs';
import { startFakeUpstream, startTapedeck } from './servers.mjs';
import { load, pretty, problems, ROOT } from './table.mjs';

const { replay, roundTrip } = load();
// A stalled body never times out in this SDK: a step that hangs fails here instead.
const CASE_TIMEOUT_MS = 30_000;

function check(kase, outcomes, baseURL) {
  kase.steps.forEach((step, n) => {
    const found = problems(step.expect, outcomes[n], baseURL);
    const where = kase.steps.length > 1 ? `${kase.id} step ${n + 1} (${step.call})` : kase.id;
    assert.deepEqual(found, [], `${where}: ${found.join('; ')}\n  the SDK showed: ${pretty(outcomes[n])}`);
  });
}

it(`@anthropic-ai/sdk ${VERSION} is the release package.json pins`, () => {
  const pinned = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pinned.dependencies['@anthropic-ai/sdk']);
});

describe('replayed from the shipped cassettes', () => {
  let server;
  before(async () => {
    server = await startTapedeck({ cassettes: `${ROOT}cassettes` });
  });
  after(() => server?.stop());

  for (const kase of replay) {
    it(kase.id, { timeout: CASE_TIMEOUT_MS }, async () => {
      check(kase, await run(server.baseURL, kase), server.baseURL);
    });
  }
});

describe('recorded through tapedeck from the stand-in upstream, then replayed', () => {
  const recorded = new Map();
  let directory;
  let recordingURL;
  let replayer;

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'tapedeck-conformance-'));
    const fake = await startFakeUpstream();
    // The round trip records failures too (a 529 then a 200, an in-stream error, a drop).
    const recorder = await startTapedeck({
      cassettes: directory, mode: 'all', upstream: fake.baseURL, recordErrors: true,
    });
    try {
      recordingURL = recorder.baseURL;
      for (const kase of roundTrip) recorded.set(kase.id, await run(recorder.baseURL, kase));
    } finally {
      await recorder.stop();
      await fake.stop(); // replay must not need it
    }
    replayer = await startTapedeck({ cassettes: directory });
  });
  after(async () => {
    await replayer?.stop();
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  const sameAcrossServers = (outcomes, baseURL) =>
    JSON.parse(JSON.stringify(outcomes).replaceAll(baseURL, '{base_url}'));

  for (const kase of roundTrip) {
    it(kase.id, { timeout: CASE_TIMEOUT_MS }, async () => {
      const live = recorded.get(kase.id);
      check(kase, live, recordingURL);
      const replayed = await run(replayer.baseURL, kase);
      check(kase, replayed, replayer.baseURL);
      assert.deepEqual(sameAcrossServers(replayed, replayer.baseURL), sameAcrossServers(live, recordingURL));
    });
  }
});
