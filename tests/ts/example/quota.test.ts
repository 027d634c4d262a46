// quota.test.ts
import Anthropic from '@anthropic-ai/sdk';
import { expect } from 'vitest';

import { test } from './tapedeck';

const HELLO = {
  model: 'claude-sonnet-4-5',
  max_tokens: 256,
  messages: [{ role: 'user' as const, content: 'Hello' }],
};

test('60 requests under 50 a minute: 10 are refused until the clock moves', async ({ tapedeck }) => {
  await tapedeck.advanceClock(0); // this test's clock stands still: windows move when told
  const client = tapedeck.client({ fault: 'quota:requests=50/60s', maxRetries: 0 });
  const remaining: number[] = [];
  const refused: InstanceType<typeof Anthropic.RateLimitError>[] = [];
  for (let i = 0; i < 60; i++) {
    try {
      const { response } = await client.messages.create(HELLO).withResponse();
      remaining.push(Number(response.headers.get('anthropic-ratelimit-requests-remaining')));
    } catch (error) {
      if (!(error instanceof Anthropic.RateLimitError)) throw error;
      refused.push(error);
    }
  }
  expect(remaining).toEqual(Array.from({ length: 50 }, (_, i) => 49 - i));
  expect(refused).toHaveLength(10);
  const retryAfter = Number(refused.at(-1)!.headers.get('retry-after'));
  expect(retryAfter).toBe(2); // one request refills in 60 s / 50 = 1.2 s, rounded up
  await tapedeck.advanceClock(retryAfter);
  expect((await client.messages.create(HELLO)).content).toEqual([{ type: 'text', text: 'Hello!' }]);
});

test('token limits count what each answer reports, and output tokens its max_tokens', async ({ tapedeck }) => {
  await tapedeck.advanceClock(0);
  const client = tapedeck.client({ fault: 'quota:input_tokens=100/60s,output_tokens=300/60s' });
  const left = async () => {
    const { response } = await client.messages.create(HELLO).withResponse();
    return ['input-tokens', 'output-tokens'].map((limit) =>
      Number(response.headers.get(`anthropic-ratelimit-${limit}-remaining`)),
    );
  };
  expect(await left()).toEqual([75, 285]); // the cassette's usage: 25 in, 15 out
  expect(await left()).toEqual([50, 270]);
  expect(await left()).toEqual([25, 255]);
  // 255 output tokens left, and the request may use up to 256 (its max_tokens): refused.
  await expect(client.messages.create(HELLO, { maxRetries: 0 })).rejects.toThrow(
    'rate limit of 300 output tokens per minute',
  );
});
