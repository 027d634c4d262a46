// The conformance table (tests/conformance/cases.json) through each TypeScript platform client
// (platforms.mjs: AnthropicBedrock, AnthropicVertex, AnthropicFoundry, AnthropicBedrockMantle,
// AnthropicAws), the cases each platform runs (the table's `platforms`, by default those whose
// calls the client has), each expecting `expect` with the `typescript`, `<platform>` and
// `typescript:<platform>` keys laid over it. conformance.test.mjs runs the first-party client.
//
// The platforms run side by side, each its cases in order, starting at different places in the
// table; the cases whose client gives tapedeck under a second come last, when the rest is done.
// The replay cases share one tapedeck; a case's runs on two platforms never overlap (they share
// its test id, hence its counters, seeded draws, quota clock and test-scoped faults).
// Meanwhile, one platform after another records its round trips through a recording tapedeck,
// each through a stand-in upstream of its own (the stand-in's `flaky` answers 529 only the first
// time it sees a text), each case into a cassette named for the platform; one more tapedeck
// replays them all.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { PLATFORM_CLIENTS, VERSION } from './platforms.mjs';
import { run, SDK_PACKAGE } from './sdk.mjs';
import { startFakeUpstream, startRelay, startTapedeck } from './servers.mjs';
import { check, load, ROOT, sameAcrossServers } from './table.mjs';

const SMOKE = Boolean(process.env.CONFORMANCE_SMOKE);
const chosen = (cases) => cases.filter((kase) => kase.smoke || !SMOKE);
// A stalled body never times out in this SDK: a step that hangs fails here instead.
const CASE_TIMEOUT_MS = 30_000;
// How long a round-trip case may wait for every platform's recordings, on top of its own time.
const RECORDINGS_TIMEOUT_MS = 120_000;
// The platform clients are built on the @anthropic-ai/sdk package.json pins: a run for another
// release of it (`npm run test:floor`) has nothing to try on them.
const skip = SDK_PACKAGE !== '@anthropic-ai/sdk' && `the platform clients run on @anthropic-ai/sdk ${VERSION}, not ${SDK_PACKAGE}`;

/** Whether a case's client must hear from tapedeck within a second (a 250 ms timeout, an
 * abort signal): under the load of the other platforms' cases the runtime can be slower than
 * that to read an answer that came in time. */
const quick = (kase) => kase.steps.some((step) => (step.client.timeout_ms ?? Infinity) < 1000 || step.signalTimeoutMs !== null);

const PLATFORMS = Object.entries(PLATFORM_CLIENTS).map(([name, make], n, all) => {
  const { replay, roundTrip } = load(VERSION, name);
  // Each platform starts its replay cases at its own place in the table, so that the platforms
  // seldom wait for one another's run of a case.
  const rotated = (cases) => {
    const start = Math.floor((n * cases.length) / all.length);
    return [...cases.slice(start), ...cases.slice(0, start)];
  };
  return {
    name, make,
    replay: rotated(chosen(replay).filter((kase) => !quick(kase))),
    roundTrip: chosen(roundTrip),
    quick: rotated(chosen(replay).filter(quick)),
  };
});

// The cases with a quick client run last, once every platform is done with its other cases and
// the recordings are made (they mostly wait on tapedeck, so they still run side by side).
let othersLeft = PLATFORMS.reduce((sum, p) => sum + p.replay.length + p.roundTrip.length, 0);
let othersDone;
const others = new Promise((resolve) => { othersDone = resolve; });
const doneWithOne = () => { if (--othersLeft === 0) othersDone(); };
// How long a quick case waits for that at most (a test left out by --test-name-pattern never ends).
const OTHERS_TIMEOUT_MS = 120_000;

// Each key's runs, one after another: the last one's promise.
const running = new Map();
function exclusive(key, work) {
  const previous = running.get(key) ?? Promise.resolve();
  const done = previous.then(work);
  running.set(key, done.catch(() => {}));
  return done;
}

/** The header that records, and replays, `platform`'s run of `kase` in a cassette of its own. */
const ownCassette = (platform, kase) => ({ 'x-tapedeck-test-cassette': `${platform}/${kase.id}` });

/**
 * Record every platform's round trips into `directory`, one platform after another, through one
 * recording tapedeck whose upstream (a relay) leads to a new stand-in for each platform, stopped
 * before the next starts. Resolves with platform -> { url, outcomes: case id -> outcomes }.
 */
async function recordRoundTrips(directory) {
  const recorded = new Map();
  const relay = await startRelay();
  try {
    // The round trip records failures too (a 529 then a 200, an in-stream error, a drop).
    const recorder = await startTapedeck({ cassettes: directory, mode: 'all', upstream: relay.baseURL, recordErrors: true });
    try {
      for (const { name, make, roundTrip } of PLATFORMS) {
        if (!roundTrip.length) continue;
        const fake = await startFakeUpstream();
        try {
          relay.to(fake.baseURL);
          const outcomes = new Map();
          for (const kase of roundTrip) outcomes.set(kase.id, await run(recorder.baseURL, kase, make, ownCassette(name, kase)));
          recorded.set(name, { url: recorder.baseURL, outcomes });
        } finally {
          await fake.stop(); // replay must not need it
        }
      }
    } finally {
      await recorder.stop();
    }
  } finally {
    await relay.stop();
  }
  return recorded;
}

describe('the table through the platform clients', { concurrency: true, skip }, () => {
  let server;
  let directory;
  let recordings; // a promise: what every platform recorded, and the tapedeck replaying it
  before(async () => {
    server = await startTapedeck({ cassettes: `${ROOT}cassettes` });
    // The recordings are made while the replay cases run, and no replay case waits for them.
    directory = mkdtempSync(join(tmpdir(), 'tapedeck-conformance-platforms-'));
    recordings = recordRoundTrips(directory).then(async (recorded) => ({
      recorded, replayer: await startTapedeck({ cassettes: directory }),
    }));
    recordings.catch(() => {}); // reported by the round-trip cases that await it
  });
  after(async () => {
    await Promise.all([server?.stop(), recordings?.then(({ replayer }) => replayer.stop(), () => {})]);
    if (directory) rmSync(directory, { recursive: true, force: true });
  });

  for (const { name, make, replay, roundTrip, quick: last } of PLATFORMS) {
    const client = `the ${name} client`;
    const fromCassettes = async (kase) => {
      check(kase, await exclusive(kase.testId, () => run(server.baseURL, kase, make)), server.baseURL, client);
    };

    describe(name, { concurrency: 1 }, () => {
      for (const kase of replay) {
        it(kase.id, { timeout: CASE_TIMEOUT_MS }, async () => {
          try {
            await fromCassettes(kase);
          } finally {
            doneWithOne();
          }
        });
      }

      for (const kase of roundTrip) {
        it(`${kase.id} (recorded through tapedeck from the stand-in upstream, then replayed)`, { timeout: CASE_TIMEOUT_MS + RECORDINGS_TIMEOUT_MS }, async () => {
          try {
            const { recorded, replayer } = await recordings;
            const { url, outcomes } = recorded.get(name);
            const live = outcomes.get(kase.id);
            check(kase, live, url, client);
            const replayed = await exclusive(`replayer ${kase.testId}`, () => run(replayer.baseURL, kase, make, ownCassette(name, kase)));
            check(kase, replayed, replayer.baseURL, client);
            assert.deepEqual(sameAcrossServers(replayed, replayer.baseURL), sameAcrossServers(live, url));
          } finally {
            doneWithOne();
          }
        });
      }

      for (const kase of last) {
        it(kase.id, { timeout: CASE_TIMEOUT_MS + OTHERS_TIMEOUT_MS }, async () => {
          await Promise.race([others, new Promise((resolve) => setTimeout(resolve, OTHERS_TIMEOUT_MS).unref())]);
          await fromCassettes(kase);
        });
      }
    });
  }
});
