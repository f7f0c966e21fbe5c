import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRedis, type RedisClient } from '../../src/cluster/redis-connection.js';
import { RedisBucketStore } from '../../src/cluster/redis-bucket-store.js';
import { createBucketLayout, type BucketSpec } from '../../src/limiter/bucket-spec.js';
import type { TakeOutcome } from '../../src/limiter/bucket-store.js';
import { makeClientKey, parseClientAddress, type ClientKey } from '../../src/identity/client-key.js';
import { MemoryBucketStore } from '../../src/limiter/stores/memory-bucket-store.js';
import { canPay } from '../../src/limiter/token-bucket.js';
import { ClusterMetrics } from '../../src/metrics/cluster-metrics.js';
import { startRedis, type RedisHandle } from '../support/redis.js';
import { systemTimers } from '../../src/core/timers.js';

/** One bucket spec as the engine compiles it. */
function spec(rule: string, scope: 'ip' | 'prefix', perSecond: number, burst: number, cost = 1, slot = 0): BucketSpec {
  return { id: `${rule}/${scope}/${perSecond}/s/${burst}`, rule, scope, ratePerMs: perSecond / 1000, rateText: `${perSecond}/s`, burst, cost, slot };
}

const IP = spec('pages', 'ip', 10, 3);
const PREFIX = spec('pages', 'prefix', 10, 4);
const HEAVY = spec('login', 'ip', 10, 5, 2);
const ipLayout = createBucketLayout('ip', [IP]);
const prefixLayout = createBucketLayout('prefix', [PREFIX]);
const heavyLayout = createBucketLayout('ip', [HEAVY]);

/** What a contract run needs of a store: take the buckets of an address and its prefix now. */
type Take = (ip: string, prefix: string, which?: 'pages' | 'login') => Promise<TakeOutcome | { admitted: null }>;

/**
 * The bucket arithmetic both stores must agree on, on real time (the Redis
 * store uses Redis's clock): burst, refusal with an honest wait, all or
 * none across an address and its prefix, cost, and refill.
 */
function bucketContract(name: string, make: () => Take) {
  describe(`bucket contract: ${name}`, () => {
    it('admits the burst, then refuses with the wait until a token is back', async () => {
      const take = make();
      for (let i = 0; i < 3; i++) expect((await take('192.0.2.1', '192.0.2.0/24')).admitted).toBe(true);
      const refused = await take('192.0.2.1', '192.0.2.0/24');
      expect(refused).toMatchObject({ admitted: false, bucket: { rule: 'pages', scope: 'ip' } });
      expect((refused as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(50);
      expect((refused as { retryAfterMs: number }).retryAfterMs).toBeLessThanOrEqual(100);
    });

    it('takes all buckets or none: a full prefix refuses, and the address keeps its tokens', async () => {
      const take = make();
      for (let i = 0; i < 4; i++) expect((await take(`198.51.100.${i + 1}`, '198.51.100.0/24')).admitted).toBe(true);
      expect(await take('198.51.100.9', '198.51.100.0/24')).toMatchObject({ admitted: false, bucket: { scope: 'prefix' } });
      // .9 paid nothing: once the prefix refills it still has its whole burst of 3 (prefix burst 4 after 400 ms).
      await new Promise((resolve) => setTimeout(resolve, 450));
      for (let i = 0; i < 3; i++) expect((await take('198.51.100.9', '198.51.100.0/24')).admitted, `request ${i}`).toBe(true);
    });

    it('charges the cost, and refills at the rate', async () => {
      const take = make();
      expect((await take('203.0.113.5', '203.0.113.0/24', 'login')).admitted).toBe(true);
      expect((await take('203.0.113.5', '203.0.113.0/24', 'login')).admitted).toBe(true);
      expect((await take('203.0.113.5', '203.0.113.0/24', 'login')).admitted).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 250));
      expect((await take('203.0.113.5', '203.0.113.0/24', 'login')).admitted).toBe(true);
    });
  });
}

/** The ClientKey the memory store is keyed by, for an address and the prefix the contract names. */
function clientOf(ip: string, prefix: string): ClientKey {
  const client = makeClientKey(parseClientAddress(ip)!, { ipv4: Number(prefix.split('/')[1]), ipv6: 64 });
  expect(client.prefix).toBe(prefix);
  return client;
}

bucketContract('memory', () => {
  const store = new MemoryBucketStore(1000);
  const started = Date.now();
  return async (ip, prefix, which = 'pages') =>
    store.take(
      which === 'login'
        ? [{ owner: '', client: clientOf(ip, prefix), layout: heavyLayout, buckets: [HEAVY] }]
        : [{ owner: '', client: clientOf(ip, prefix), layout: ipLayout, buckets: [IP] }, { owner: '', client: clientOf(ip, prefix), layout: prefixLayout, buckets: [PREFIX] }],
      Date.now() - started,
    );
});

let redis: RedisHandle;
const clients: RedisClient[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await redis?.stop();
});

bucketContract('redis', () => {
  let store: RedisBucketStore | null = null;
  const run = Math.random().toString(36).slice(2);
  return async (ip, prefix, which = 'pages') => {
    if (store === null) {
      const client = openRedis({ type: 'redis', url: redis.url, cluster: false, sentinels: [], prefix: `test-${run}:`, timeout: 500 });
      clients.push(client);
      await client.connect();
      store = new RedisBucketStore(client, `test-${run}:`, new ClusterMetrics(new Registry()), { onDown: () => {}, onUp: () => {} });
    }
    const takes = which === 'login' ? [{ key: ip, layout: heavyLayout, buckets: [HEAVY] }] : [{ key: ip, layout: ipLayout, buckets: [IP] }, { key: prefix, layout: prefixLayout, buckets: [PREFIX] }];
    return store.take({ hashTag: prefix, takes });
  };
});

describe('bucket contract: a level a float sum leaves a hair under the cost', () => {
  // 9/s: a level of 0.01 refilled for 110 ms is 0.01 + 110 × 0.009 = 0.9999999999999999, one token in exact arithmetic.
  const NINE = spec('paced', 'ip', 9, 1);
  const level = 0.01 + 110 * (9 / 1000);

  it('pays it in the memory store (its epsilon) and in the Redis store alike', async () => {
    expect(level).toBeLessThan(1);
    expect(canPay(level, 1)).toBe(true);
    const prefix = `eps-${Math.random().toString(36).slice(2)}:`;
    const client = openRedis({ type: 'redis', url: redis.url, cluster: false, sentinels: [], prefix, timeout: 500 });
    clients.push(client);
    await client.connect();
    const store = new RedisBucketStore(client, prefix, new ClusterMetrics(new Registry()), { onDown: () => {}, onUp: () => {} });
    // The bucket as the script would leave it, stamped in the future so no refill is added on top of the level.
    const [seconds] = await client.time();
    await client.hset(`${prefix}{192.0.2.0/24}:192.0.2.1|${NINE.id}`, 't', String(level), 'm', String((Number(seconds) + 60) * 1000));
    const outcome = await store.take({ hashTag: '192.0.2.0/24', takes: [{ key: '192.0.2.1', layout: createBucketLayout('ip', [NINE]), buckets: [NINE] }] });
    expect(outcome).toEqual({ admitted: true });
  });
});

describe('the Redis store\'s own deadline', () => {
  it('bounds the whole check by store.timeout even when the command itself has no timeout (a resent script, a redirect)', async () => {
    const prefix = `deadline-${Math.random().toString(36).slice(2)}:`;
    // A connection without a command timeout: only the store's deadline can cut the wait short.
    const client = new Redis(redis.url, { enableAutoPipelining: true, lazyConnect: true });
    const admin = new Redis(redis.url, { lazyConnect: true });
    clients.push(client, admin);
    await Promise.all([client.connect(), admin.connect()]);
    const store = new RedisBucketStore(client, prefix, new ClusterMetrics(new Registry()), { onDown: () => {}, onUp: () => {} }, { ms: 50, timers: systemTimers });
    const take = { hashTag: '192.0.2.0/24', takes: [{ key: '192.0.2.1', layout: ipLayout, buckets: [IP] }] };
    expect((await store.take(take)).admitted).toBe(true);
    await admin.call('CLIENT', 'PAUSE', '600', 'ALL');
    const started = Date.now();
    const outcome = await store.take(take);
    const waitedMs = Date.now() - started;
    expect(outcome).toEqual({ admitted: null, reason: 'timeout' });
    expect(waitedMs).toBeLessThan(300);
    await new Promise((resolve) => setTimeout(resolve, 700));
  });
});
