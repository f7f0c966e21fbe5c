import { describe, expect, it } from 'vitest';
import type { BucketSpec } from '../../../src/limiter/bucket-spec.js';
import { rateLimitHeaders } from '../../../src/proxy/refusal-response.js';

const write: BucketSpec = { id: 'w', rule: 'write', scope: 'prefix', ratePerMs: 3 / 1000, rateText: '3/s', burst: 60, cost: 1, slot: 0 };

describe('rateLimitHeaders', () => {
  it('rounds Retry-After up to whole seconds, never below 1', () => {
    expect(rateLimitHeaders(write, 1).valueOf()).toMatchObject({ 'retry-after': '1' });
    expect(rateLimitHeaders(write, 1000)['retry-after']).toBe('1');
    expect(rateLimitHeaders(write, 1001)['retry-after']).toBe('2');
  });

  it('describes the bucket as an IETF quota: burst over the time to refill from empty', () => {
    expect(rateLimitHeaders(write, 2500)).toEqual({
      'retry-after': '3',
      'ratelimit-policy': '"write-prefix";q=60;w=20',
      ratelimit: '"write-prefix";r=0;t=3',
    });
  });
});
