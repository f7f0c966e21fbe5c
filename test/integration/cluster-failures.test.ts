import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { request } from '../support/http-client.js';
import { startTestProxy } from '../support/portcullis.js';
import { startRedis, type RedisHandle } from '../support/redis.js';

const TIMEOUT_MS = 100;

/** Polls `check` every 25 ms until it holds, for at most `withinMs`. */
async function within(withinMs: number, check: () => Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < withinMs) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`not within ${withinMs} ms`);
}

const pagesPolicy = (redisUrl: string, prefix: string) => `store: { type: redis, url: "${redisUrl}", prefix: "${prefix}", timeout: ${TIMEOUT_MS}ms }
limits:
  - name: pages
    methods: [GET]
    per_ip: { rate: 100/s, burst: 100 }
`;

/**
 * Cluster mode when Redis, or what comes through it, is not what a node
 * expects: a real redis-server, a real Apache, real portcullis nodes.
 */
describe('cluster mode: failures and hostile input', () => {
  let redis: RedisHandle;
  let apache: ApacheHandle;

  beforeAll(async () => {
    redis = await startRedis();
    apache = await startApache();
  });

  afterAll(async () => {
    await apache?.stop();
    await redis?.stop();
  });

  it('a node started while Redis is down reports the shared store up once Redis answers', async () => {
    await redis.kill();
    const node = await startTestProxy(apache.url, pagesPolicy(redis.url, `down${process.pid}:`));
    try {
      const metric = async () => /^portcullis_store_shared_up (\d)$/m.exec((await request(node.adminUrl, { path: '/metrics' })).body)?.[1];
      expect(await metric()).toBe('0');
      await redis.restart();
      // Once the node is connected again (its /readyz says so), the gauge must agree, and requests be shared.
      const readyz = async () => (JSON.parse((await request(node.adminUrl, { path: '/readyz' })).body) as { checks: Record<string, { detail: string }> }).checks.store?.detail ?? '';
      await within(5_000, async () => /answers$/.test(await readyz()));
      for (let i = 0; i < 3; i++) expect((await request(node.url, { path: '/', localAddress: '127.21.0.1' })).status).toBe(200);
      expect(await metric()).toBe('1');
      expect(node.logs.some((line) => /answers again/.test(String(line.msg)))).toBe(true);
    } finally {
      await node.close();
    }
  });
});
