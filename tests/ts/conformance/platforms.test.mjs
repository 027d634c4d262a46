// The conformance table (tests/conformance/cases.json) through each TypeScript platform client
// (platforms.mjs: AnthropicBedrock, AnthropicVertex, AnthropicFoundry, AnthropicBedrockMantle,
// AnthropicAws), the cases each platform runs (the table's `platforms`, by default those whose
// calls the client has), each expecting `expect` with the `typescript`, `<platform>` and
// `typescript:<platform>` keys laid over it. conformance.test.mjs runs the first-party client.
//
// The platforms run side by side, each its cases in order: the replay cases share one tapedeck,
// and a case's runs on two platforms never overlap (they share its test id, hence its counters,
// seeded draws, quota clock and test-scoped faults). Each platform records its round trips
// through a tapedeck and a stand-in upstream of its own (the stand-in's `flaky` answers 529 only
// the first time it sees a text), then replays them.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { PLATFORM_CLIENTS, VERSION } from './platforms.mjs';
import { run, SDK_PACKAGE } from './sdk.mjs';
import { startFakeUpstream, startTapedeck } from './servers.mjs';
import { check, load, ROOT, sameAcrossServers } from './table.mjs';

const SMOKE = Boolean(process.env.CONFORMANCE_SMOKE);
const chosen = (cases) => cases.filter((kase) => kase.smoke || !SMOKE);
// A stalled body never times out in this SDK: a step that hangs fails here instead.
const CASE_TIMEOUT_MS = 30_000;
// The platform clients are built on the @anthropic-ai/sdk package.json pins: a run for another
// release of it (`npm run test:floor`) has nothing to try on them.
const skip = SDK_PACKAGE !== '@anthropic-ai/sdk' && `the platform clients run on @anthropic-ai/sdk ${VERSION}, not ${SDK_PACKAGE}`;

// Each test id's runs, one after another: the last one's promise.
const running = new Map();
function exclusive(testId, work) {
  const previous = running.get(testId) ?? Promise.resolve();
  const done = previous.then(work);
  running.set(testId, done.catch(() => {}));
  return done;
}

describe('the table through the platform clients', { concurrency: true, skip }, () => {
  let server;
  before(async () => {
    server = await startTapedeck({ cassettes: `${ROOT}cassettes` });
  });
  after(() => server?.stop());

  for (const [platform, make] of Object.entries(PLATFORM_CLIENTS)) {
    const { replay, roundTrip } = load(VERSION, platform);
    const client = `the ${platform} client`;

    describe(platform, { concurrency: 1 }, () => {
      for (const kase of chosen(replay)) {
        it(kase.id, { timeout: CASE_TIMEOUT_MS }, async () => {
          check(kase, await exclusive(kase.testId, () => run(server.baseURL, kase, make)), server.baseURL, client);
        });
      }

      describe(`${platform}: recorded through tapedeck from the stand-in upstream, then replayed`, () => {
        const recorded = new Map();
        let directory;
        let recordingURL;
        let replayer;

        before(async () => {
          directory = mkdtempSync(join(tmpdir(), `tapedeck-conformance-${platform}-`));
          const fake = await startFakeUpstream();
          try {
            const recorder = await startTapedeck({
              cassettes: directory, mode: 'all', upstream: fake.baseURL, recordErrors: true,
            });
            try {
              recordingURL = recorder.baseURL;
              for (const kase of chosen(roundTrip)) recorded.set(kase.id, await run(recorder.baseURL, kase, make));
            } finally {
              await recorder.stop();
            }
          } finally {
            await fake.stop(); // replay must not need it
          }
          replayer = await startTapedeck({ cassettes: directory });
        });
        after(async () => {
          await replayer?.stop();
          if (directory) rmSync(directory, { recursive: true, force: true });
        });

        for (const kase of chosen(roundTrip)) {
          it(kase.id, { timeout: CASE_TIMEOUT_MS }, async () => {
            const live = recorded.get(kase.id);
            check(kase, live, recordingURL, client);
            const replayed = await run(replayer.baseURL, kase, make);
            check(kase, replayed, replayer.baseURL, client);
            assert.deepEqual(sameAcrossServers(replayed, replayer.baseURL), sameAcrossServers(live, recordingURL));
          });
        }
      });
    });
  }
});
