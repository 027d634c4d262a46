// The conformance table (tests/conformance/cases.json) through the official TypeScript SDK's
// first-party client, against the real tapedeck server: the same cases the Python suite
// (tests/test_conformance.py) runs through the Python SDK (platforms.test.mjs runs them through
// the platform clients). Every case with the release package.json pins as
// @anthropic-ai/sdk (`npm test`); with CONFORMANCE_SMOKE=1, the `smoke` cases only (with the
// oldest supported release: `npm run test:floor`, see sdk.mjs).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { run, SDK_PACKAGE, VERSION } from './sdk.mjs';
import { startFakeUpstream, startTapedeck } from './servers.mjs';
import { check, load, ROOT, sameAcrossServers } from './table.mjs';

const SMOKE = Boolean(process.env.CONFORMANCE_SMOKE);
const chosen = (cases) => cases.filter((kase) => kase.smoke || !SMOKE);
const table = load(VERSION);
const replay = chosen(table.replay);
const roundTrip = chosen(table.roundTrip);
// A stalled body never times out in this SDK: a step that hangs fails here instead.
const CASE_TIMEOUT_MS = 30_000;


it(`${SDK_PACKAGE} ${VERSION} is the release package.json pins`, () => {
  const pinned = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  // "1.17.0", or for an alias "npm:@anthropic-ai/sdk@1.2.0"
  assert.equal(VERSION, pinned.dependencies[SDK_PACKAGE]?.replace(/^npm:@anthropic-ai\/sdk@/, ''));
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
