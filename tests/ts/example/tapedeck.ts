// tapedeck.ts
import Anthropic, { type ClientOptions } from '@anthropic-ai/sdk';
import { inject, test as base } from 'vitest';

interface Steering {
  cassette?: string; // answer from (or, when recording, record into) this cassette
  fault?: string; // break this client's responses: docs/faults.md
  timing?: string; // e.g. 'recorded' for the tests about pacing and timeouts
}

export interface Tapedeck {
  baseURL: string;
  testId: string;
  /** An SDK client for this test: its requests carry the test's id. */
  client(options?: Steering & ClientOptions): Anthropic;
  /** Give this test's requests `spec` through the admin API ('none': no faults). */
  setFaults(spec: string): Promise<void>;
  /** Rewind this test's sequences and fault counters. */
  reset(): Promise<void>;
}

export const test = base.extend<{ tapedeck: Tapedeck }>({
  tapedeck: async ({ task }, use) => {
    const baseURL = inject('tapedeckURL');
    // Header-safe and unique per test: sequences and `times` counters never leak between tests.
    const testId = `${task.file.name} > ${task.name}`.replace(/[^\x21-\x7e]+/g, '_');
    const admin = (method: string, path: string, body?: unknown) =>
      fetch(`${baseURL}/_tapedeck/${path}`, {
        method,
        headers: { 'x-tapedeck-test-id': testId, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      }).then(async (response) => {
        if (!response.ok) throw new Error(`tapedeck: ${await response.text()}`);
      });

    await use({
      baseURL,
      testId,
      client({ cassette, fault, timing, ...options } = {}) {
        const steering = {
          'x-tapedeck-test-id': testId,
          ...(cassette && { 'x-tapedeck-cassette': cassette }),
          ...(fault && { 'x-tapedeck-fault': fault }),
          ...(timing && { 'x-tapedeck-timing': timing }),
        };
        return new Anthropic({
          baseURL,
          apiKey: 'tapedeck-test', // any key will do
          ...options,
          defaultHeaders: { ...steering, ...options.defaultHeaders },
        });
      },
      setFaults: (spec) => admin('PUT', 'faults', { faults: spec }),
      reset: () => admin('POST', 'reset'),
    });

    // So that a rerun starts clean: drop this test's faults, rewind its sequences.
    await admin('DELETE', 'faults');
    await admin('POST', 'reset');
  },
});
