import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { request, type TestResponse } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { startServedProxy, type ServedProxy } from '../support/served-portcullis.js';
import { startRedis, type RedisHandle } from '../support/redis.js';

const TOKEN = 'cluster-test-token-0123456789';
const TIMEOUT_MS = 100;

/** Two nodes' policy: one shared limit, a block worth 2 strikes, bans at 6 strikes. */
const policy = (redisUrl: string, prefix: string) => `store: { type: redis, url: "${redisUrl}", prefix: "${prefix}", timeout: ${TIMEOUT_MS}ms }
limits:
  - name: pages
    methods: [GET]
    per_ip: { rate: 6/min, burst: 10 }
block:
  - path: /xmlrpc.php
    strikes: 2
escalation: { strikes: 6, window: 60s, ban: 10m, prefix_after: 0, tarpit: 0s }
`;

/** Polls `check` every 25 ms until it holds, for at most `withinMs`; returns how long it took. */
async function within(withinMs: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < withinMs) {
    if (await check()) return Date.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`not within ${withinMs} ms`);
}

/**
 * Two portcullis nodes in front of one real Apache, sharing one real
 * redis-server: the shared limit, bans through either node's admin API and by
 * strikes spread over both, and what happens while Redis is down and after it
 * is back.
 */
describe('cluster mode over Redis', () => {
  let redis: RedisHandle;
  let apache: ApacheHandle;
  let a: TestProxy;
  let b: TestProxy;
  const get = (node: TestProxy, localAddress: string, path = '/'): Promise<TestResponse> => request(node.url, { path, localAddress });
  /** Whether `node` holds an active ban on `target` (asked through its admin API, which spends no tokens). */
  const bans = async (node: TestProxy, target: string) => {
    const list = JSON.parse((await request(node.adminUrl, { path: '/bans' })).body) as { bans: { target: string }[] };
    return list.bans.some((ban) => ban.target === target);
  };
  const statuses = async (node: TestProxy, localAddress: string, count: number, path = '/') => {
    const seen: number[] = [];
    for (let i = 0; i < count; i++) seen.push((await get(node, localAddress, path)).status);
    return seen;
  };

  beforeAll(async () => {
    redis = await startRedis();
    apache = await startApache();
    const prefix = `t${process.pid}:`;
    a = await startTestProxy(apache.url, policy(redis.url, prefix), { adminToken: TOKEN });
    b = await startTestProxy(apache.url, policy(redis.url, prefix), { adminToken: TOKEN });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await apache?.stop();
    await redis?.stop();
  });

  it('holds one limit across both nodes: a client spreading over them gets the burst once, not twice', async () => {
    const client = '127.20.0.1';
    const onA = await statuses(a, client, 6);
    // 14 in all: 3 or 4 refusals, short of the 6 strikes that would ban it.
    const onB = await statuses(b, client, 8);
    const admitted = [...onA, ...onB].filter((status) => status === 200).length;
    // Burst 10 plus at most one refilled token (6/min) in the seconds this takes.
    expect(admitted).toBeGreaterThanOrEqual(10);
    expect(admitted).toBeLessThanOrEqual(11);
    expect(onB.slice(-3)).toEqual([429, 429, 429]);
  });

  it('enforces a ban made through one node\'s admin API on the other within a second', async () => {
    const client = '127.20.0.2';
    expect((await get(b, client)).status).toBe(200);
    const banned = await request(a.adminUrl, { method: 'POST', path: '/bans', body: JSON.stringify({ ip: client, duration: '1h' }), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
    expect(banned.status).toBe(201);
    await within(1_000, () => bans(b, client));
    expect((await get(b, client).catch(() => ({ status: -1 }))).status).not.toBe(200);
    // A lift through B is a lift on A too.
    const lifted = await request(b.adminUrl, { method: 'DELETE', path: `/bans/${client}`, headers: { authorization: `Bearer ${TOKEN}` } });
    expect(lifted.status).toBe(200);
    await within(1_000, async () => !(await bans(a, client)));
  });

  it('bans a client whose strikes are spread over both nodes, on both, within a second', async () => {
    const client = '127.20.0.4';
    // 2 blocked requests on each node: 4 strikes each, 8 together, the ban at 6 on whichever node counts the sixth.
    expect(await statuses(a, client, 2, '/xmlrpc.php')).toEqual([403, 403]);
    expect(await statuses(b, client, 2, '/xmlrpc.php')).toEqual([403, 403]);
    await within(1_000, () => bans(a, client));
    await within(1_000, () => bans(b, client));
    expect((await get(a, client).catch(() => ({ status: -1 }))).status).not.toBe(200);
    expect((await get(b, client).catch(() => ({ status: -1 }))).status).not.toBe(200);
  });

  it('brings a ban published while a node\'s subscriber was away to that node once it is back', async () => {
    // Only the subscriber connections go: the command connections stay up,
    // so no node sees a reconnect of its store, and the ban A publishes
    // meanwhile reaches no one. While `maxclients` is held at the clients
    // left, the subscribers cannot come back before A has published.
    const admin = new Redis(redis.url);
    try {
      const connected = Number(/connected_clients:(\d+)/.exec(await admin.info('clients'))?.[1]);
      const subscribers = ((await admin.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string).trim().split('\n').length;
      await admin.config('SET', 'maxclients', String(connected - subscribers));
      await admin.client('KILL', 'TYPE', 'pubsub');
      const client = '127.20.0.8';
      const banned = await request(a.adminUrl, { method: 'POST', path: '/bans', body: JSON.stringify({ ip: client, duration: '1h' }), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
      expect(banned.status).toBe(201);
      // A has written and published it by the time its admin API answers; B's subscriber is refused.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await bans(b, client)).toBe(false);
      await admin.config('SET', 'maxclients', '10000');
      await within(5_000, () => bans(b, client));
    } finally {
      await admin.config('SET', 'maxclients', '10000').catch(() => {});
      admin.disconnect();
    }
  });

  it('while Redis is down: no request waits past the timeout, limits hold per node, /readyz says degraded; after it is back, shared mode resumes and bans made meanwhile reach the other node', async () => {
    await redis.kill();
    const client = '127.20.0.5';
    const started = Date.now();
    const outcome: number[] = [];
    for (let i = 0; i < 12; i++) {
      const sent = Date.now();
      outcome.push((await get(a, client)).status);
      expect(Date.now() - sent, `request ${i}`).toBeLessThan(TIMEOUT_MS + 400);
    }
    expect(Date.now() - started).toBeLessThan(12 * (TIMEOUT_MS + 400));
    // The node's own bucket: burst 10, then refused.
    expect(outcome.filter((status) => status === 200)).toHaveLength(10);
    expect(outcome.slice(-2)).toEqual([429, 429]);
    const ready = JSON.parse((await request(a.adminUrl, { path: '/readyz' })).body) as { ready: boolean; checks: Record<string, { ok: boolean; detail: string }> };
    expect(ready.ready).toBe(true);
    expect(ready.checks.store?.detail).toMatch(/^degraded/);

    // A ban made on A while Redis is away.
    const outage = '127.20.0.6';
    const banned = await request(a.adminUrl, { method: 'POST', path: '/bans', body: JSON.stringify({ ip: outage, duration: '1h' }), headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' } });
    expect(banned.status).toBe(201);
    expect((await get(b, outage)).status).toBe(200);

    await redis.restart();
    // Reconnect, then reconcile: A writes and announces the ban it made meanwhile.
    await within(5_000, () => bans(b, outage));
    await within(5_000, async () => {
      await get(a, '127.20.0.7');
      return /portcullis_store_shared_up 1/.test((await request(a.adminUrl, { path: '/metrics' })).body);
    });
    const after = JSON.parse((await request(a.adminUrl, { path: '/readyz' })).body) as { checks: Record<string, { detail: string }> };
    expect(after.checks.store?.detail).toMatch(/answers$/);
  });

  it('accuracy: a client flooding both nodes at once gets at most burst + rate × time through, and measures the overshoot', async () => {
    const ratePerS = 10;
    const burst = 20;
    const accuracyPolicy = `store: { type: redis, url: "${redis.url}", prefix: "acc${process.pid}:", timeout: ${TIMEOUT_MS}ms }
limits:
  - name: flood
    methods: [GET]
    per_ip: { rate: ${ratePerS}/s, burst: ${burst} }
escalation: { enabled: false }
`;
    const c = await startTestProxy(apache.url, accuracyPolicy);
    const d = await startTestProxy(apache.url, accuracyPolicy);
    try {
      const client = '127.20.1.1';
      const started = Date.now();
      const durationMs = 3_000;
      let admitted = 0;
      let refused = 0;
      // Four loops, two per node, each bounded in time and count.
      const loop = async (node: TestProxy) => {
        for (let i = 0; i < 2_000 && Date.now() - started < durationMs; i++) {
          const status = (await get(node, client)).status;
          if (status === 200) admitted++;
          else if (status === 429) refused++;
        }
      };
      await Promise.all([loop(c), loop(d), loop(c), loop(d)]);
      const elapsedS = (Date.now() - started) / 1000;
      const ceiling = burst + ratePerS * elapsedS;
      console.log(`cluster accuracy: ${admitted} admitted, ${refused} refused in ${elapsedS.toFixed(2)} s across two nodes; burst + rate × t = ${ceiling.toFixed(1)}; overshoot ${(admitted - ceiling).toFixed(1)}`);
      expect(refused).toBeGreaterThan(admitted);
      // The shared buckets are authoritative while Redis answers: no overshoot beyond the one token that refills while the last answers travel,
      // and one request per check Redis did not answer in time (a busy machine), where the node's own decision stood.
      const unanswered = async (node: TestProxy) => {
        const metrics = (await request(node.adminUrl, { path: '/metrics' })).body;
        expect(metrics).toContain('portcullis_store_shared_checks_total{outcome="timeout"}');
        return ['timeout', 'down', 'error'].reduce((sum, outcome) => sum + Number(new RegExp(`^portcullis_store_shared_checks_total\\{outcome="${outcome}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0), 0);
      };
      const late = (await unanswered(c)) + (await unanswered(d));
      expect(admitted).toBeLessThanOrEqual(Math.ceil(ceiling) + 1 + late);
      expect(late).toBeLessThan(admitted);
      expect(admitted).toBeGreaterThanOrEqual(Math.floor(burst + ratePerS * (elapsedS - 0.5)));
    } finally {
      await c.close();
      await d.close();
    }
  });

  it('holds one limit across three `portcullis serve` processes', async () => {
    const served: ServedProxy[] = [];
    try {
      const processPolicy = `store: { type: redis, url: "${redis.url}", prefix: "p${process.pid}:" }\nlimits:\n  - name: pages\n    methods: [GET]\n    per_ip: { rate: 6/min, burst: 10 }\nescalation: { enabled: false }\n`;
      for (let i = 0; i < 3; i++) served.push(await startServedProxy(apache.url, processPolicy));
      const client = '127.20.2.1';
      let admitted = 0;
      // 7 requests to each of the three, in turn: 21 in all against a burst of 10.
      for (let i = 0; i < 21; i++) {
        const node = served[i % 3] as ServedProxy;
        if ((await request(`http://127.0.0.1:${node.port}`, { localAddress: client })).status === 200) admitted++;
      }
      expect(admitted).toBeGreaterThanOrEqual(10);
      expect(admitted).toBeLessThanOrEqual(11);
      for (const node of served) expect(node.alive()).toBe(true);
    } finally {
      for (const node of served) await node.stop();
    }
  });
});
