// chat.test.ts
import Anthropic from '@anthropic-ai/sdk';
import { expect } from 'vitest';

import { test } from './tapedeck';

const HELLO = {
  model: 'claude-sonnet-4-5',
  max_tokens: 256,
  messages: [{ role: 'user' as const, content: 'Hello' }],
};

test('streams the cassette', async ({ tapedeck }) => {
  const stream = tapedeck.client({ cassette: 'streaming/hello' }).messages.stream(HELLO);
  expect(await stream.finalText()).toBe('Hello!');
});

test('the retry loop survives two 529s', async ({ tapedeck }) => {
  const client = tapedeck.client({ fault: 'status:code=529,times=2,retry_after_ms=1', maxRetries: 2 });
  const message = await client.messages.create(HELLO);
  expect(message.content).toEqual([{ type: 'text', text: 'Hello!' }]);
});

test('an overloaded_error in the middle of the stream', async ({ tapedeck }) => {
  const stream = tapedeck.client({ fault: 'overloaded:after=3' }).messages.stream(HELLO);
  const error = await stream.finalMessage().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(Anthropic.APIError);
  expect((error as InstanceType<typeof Anthropic.APIError>).type).toBe('overloaded_error');
});

test('faults for this test only, through the admin API', async ({ tapedeck }) => {
  await tapedeck.setFaults('disconnect:after=4,times=1');
  const client = tapedeck.client({ maxRetries: 0 });
  const cut = Anthropic.APIConnectionError; // a stream cut mid-way (SDK 1.17 and newer)
  await expect(client.messages.stream(HELLO).finalText()).rejects.toBeInstanceOf(cut);
  expect(await client.messages.stream(HELLO).finalText()).toBe('Hello!'); // times=1: used up
  await tapedeck.reset(); // rewinds the counters: the next stream is cut again
  await expect(client.messages.stream(HELLO).finalText()).rejects.toBeInstanceOf(cut);
});

test('a stalled stream needs a deadline of its own', async ({ tapedeck }) => {
  // The SDK's `timeout` covers only the wait for the headers: bound the whole call.
  const client = tapedeck.client({ fault: 'stall:after=3,ms=5000', timeout: 1000 });
  const stream = client.messages.stream(HELLO, { signal: AbortSignal.timeout(200) });
  await expect(stream.finalMessage()).rejects.toBeInstanceOf(Anthropic.APIUserAbortError);
});
