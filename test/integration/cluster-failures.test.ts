import net from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { request } from '../support/http-client.js';
import { startTestProxy } from '../support/portcullis.js';
import { startServedProxy } from '../support/served-portcullis.js';
import { makeClientKey, parseClientAddress } from '../../src/identity/client-key.js';
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

  it('survives hostile messages on the cluster channel (null, entries of the wrong shape, oversized) and still applies a valid ban after them', async () => {
    const prefix = `hostile${process.pid}:`;
    // Its own process: a throw in the subscriber's handler is an uncaught exception that ends it.
    const node = await startServedProxy(apache.url, `${pagesPolicy(redis.url, prefix)}escalation: { tarpit: 0s }\n`);
    const publisher = new Redis(redis.url);
    try {
      const channel = `${prefix}events`;
      // The node subscribes during start; wait (bounded) until it listens.
      await within(5_000, async () => (await publisher.publish(channel, '{}')) >= 1);
      const hostile = [
        'null',
        '[1, 2]',
        '"text"',
        JSON.stringify({ from: 'x', kind: 'strikes', strikes: [5, null, 'a', { ip: '127.21.1.2' }] }),
        JSON.stringify({ from: 'x', kind: 'strikes', strikes: [['127.21.1.2', 1, 'pages', { site: 'object' }], ['127.21.1.2', 1e400, 'pages', null]] }),
        JSON.stringify({ from: 'x', kind: 'lift', target: { not: 'a string' } }),
        JSON.stringify({ from: 'x', kind: 'ban', ban: null }),
        JSON.stringify({ from: 'x', kind: 'strikes', strikes: Array.from({ length: 60_000 }, () => ['127.21.1.3', 1, 'x'.repeat(20), null]) }),
      ];
      for (const text of hostile) await publisher.publish(channel, text);
      const now = Date.now();
      const ban = { target: '127.21.1.9', scope: 'ip', family: 4, prefix: '127.21.1.0/24', source: 'manual', reason: 'by hand on another node', startedAt: now, expiresAt: now + 3_600_000, nth: 1, dryRun: false };
      await publisher.publish(channel, JSON.stringify({ from: 'another-node', kind: 'ban', ban }));
      const url = `http://127.0.0.1:${node.port}`;
      await within(2_000, async () => (await request(url, { path: '/', localAddress: '127.21.1.9' }).catch(() => ({ status: -1 }))).status !== 200);
      expect(node.alive()).toBe(true);
      expect((await request(url, { path: '/', localAddress: '127.21.1.10' })).status).toBe(200);
      // The oversized batch was not applied: its address holds no ban.
      expect((await request(url, { path: '/', localAddress: '127.21.1.3' })).status).toBe(200);
    } finally {
      publisher.disconnect();
      await node.stop();
    }
  });

  it('a node joining a cluster whose bans hash is large (100,000 bans) loads them all within the default timeout', async () => {
    const prefix = `large${process.pid}:`;
    const count = 100_000;
    const writer = new Redis(redis.url);
    try {
      const now = Date.now();
      for (let start = 0; start < count; start += 1_000) {
        const fields: string[] = [];
        for (let i = start; i < start + 1_000; i++) {
          const target = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
          const ban = { target, scope: 'ip', family: 4, prefix: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.0/24`, source: 'strikes', reason: '6 strikes within 60s (last refused by xmlrpc)', startedAt: now, expiresAt: now + 3_600_000, nth: 1, dryRun: false };
          fields.push(target, JSON.stringify(ban));
        }
        await writer.hset(`${prefix}bans`, ...fields);
      }
      // The default store.timeout: 50 ms.
      const node = await startTestProxy(apache.url, `store: { type: redis, url: "${redis.url}", prefix: "${prefix}" }\nescalation: { tarpit: 0s }\n`);
      try {
        await within(20_000, async () => node.running.ledger.size >= count);
        expect(node.running.ledger.active().some((ban) => ban.target === '10.1.134.159')).toBe(true);
      } finally {
        await node.close();
      }
    } finally {
      writer.disconnect();
    }
  }, 60_000);

  it('a ban from another node on an address this node never bans (its allowlist) is not applied here, by address or by prefix', async () => {
    const prefix = `allow${process.pid}:`;
    const token = 'cluster-allow-token-0123456789';
    const base = `${pagesPolicy(redis.url, prefix)}escalation: { tarpit: 0s }\n`;
    const a = await startTestProxy(apache.url, base, { adminToken: token });
    // B allowlists an address A does not know about.
    const b = await startTestProxy(apache.url, `${base}clients: { allow: ["127.21.2.1"] }\n`);
    try {
      const ban = async (ip: string) => {
        const response = await request(a.adminUrl, { method: 'POST', path: '/bans', body: JSON.stringify({ ip, duration: '1h' }), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
        expect(response.status).toBe(201);
      };
      await ban('127.21.2.1');
      await ban('127.21.2.0/24');
      // A ban published after them, that B applies: once B holds it, B has heard the others.
      await ban('127.21.3.2');
      const holds = (target: string) => b.running.ledger.active().some((entry) => entry.target === target);
      await within(2_000, async () => holds('127.21.3.2'));
      expect(holds('127.21.2.1')).toBe(false);
      expect(holds('127.21.2.0/24')).toBe(false);
      expect((await request(b.url, { path: '/', localAddress: '127.21.2.1' })).status).toBe(200);
      // A, whose policy allows banning it, enforces its own ban.
      expect((await request(a.url, { path: '/', localAddress: '127.21.2.1' }).catch(() => ({ status: -1 }))).status).not.toBe(200);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('a node that enforces still bans a client whose strikes another node, still in dry run, turned into a dry-run ban', async () => {
    const prefix = `dry${process.pid}:`;
    const policy = (dryRun: boolean) => `${pagesPolicy(redis.url, prefix)}block:\n  - path: /xmlrpc.php\n    strikes: 2\nescalation: { strikes: 6, window: 60s, ban: 10m, prefix_after: 0, tarpit: 0s, dry_run: ${dryRun} }\n`;
    // A rollout from dry run to enforcing, one node at a time: A is still in dry run, B enforces.
    const a = await startTestProxy(apache.url, policy(true));
    const b = await startTestProxy(apache.url, policy(false));
    try {
      const client = '127.21.4.1';
      // 6 strikes on A: a dry-run ban there; the strikes reach B, which bans for real.
      for (let i = 0; i < 3; i++) expect((await request(a.url, { path: '/xmlrpc.php', localAddress: client })).status).toBe(403);
      expect(a.running.ledger.active().find((ban) => ban.target === client)?.dryRun).toBe(true);
      await within(1_000, async () => b.running.ledger.active().some((ban) => ban.target === client && !ban.dryRun));
      expect((await request(b.url, { path: '/', localAddress: client }).catch(() => ({ status: -1 }))).status).not.toBe(200);
      // The other way: a client refused on B only. B's ban reaches A, which records it as a dry run, as it does its own, and enforces nothing.
      const other = '127.21.4.2';
      // (The third earns the ban, and B closes the banned client's connection: it may hang up.)
      for (let i = 0; i < 3; i++) expect((await request(b.url, { path: '/xmlrpc.php', localAddress: other }).catch(() => ({ status: 403 }))).status).toBe(403);
      await within(1_000, async () => a.running.ledger.active().some((ban) => ban.target === other));
      expect(a.running.ledger.active().find((ban) => ban.target === other)?.dryRun).toBe(true);
      expect((await request(a.url, { path: '/', localAddress: other })).status).toBe(200);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('sends every strike of a flood of many addresses to the other nodes, in several batches when one is full', async () => {
    const prefix = `flood${process.pid}:`;
    const node = await startTestProxy(apache.url, pagesPolicy(redis.url, prefix));
    const listener = new Redis(redis.url);
    try {
      const heard = new Set<string>();
      listener.on('message', (_channel: string, text: string) => {
        const message = JSON.parse(text) as { kind: string; strikes?: [string][] };
        if (message.kind === 'strikes') for (const [ip] of message.strikes ?? []) heard.add(ip);
      });
      await listener.subscribe(`${prefix}events`);
      // 6,000 distinct addresses strike within one batch window (more than one batch holds).
      const count = 6_000;
      const nowMs = performance.now();
      for (let i = 0; i < count; i++) {
        const addr = parseClientAddress(`198.51.${(i >> 8) & 255}.${i & 255}`);
        node.running.engine.strikeWithoutRequest(makeClientKey(addr!, { ipv4: 24, ipv6: 64 }), 'malformed', nowMs);
      }
      await within(2_000, async () => heard.size >= count);
    } finally {
      listener.disconnect();
      await node.close();
    }
  });

  it('one ban for strikes that crossed between the nodes: each node bans once, and neither counts it twice when the other\'s copy arrives', async () => {
    const prefix = `twice${process.pid}:`;
    const policy = `${pagesPolicy(redis.url, prefix)}block:\n  - path: /xmlrpc.php\n    strikes: 2\nescalation: { strikes: 6, window: 60s, ban: 10m, prefix_after: 0, tarpit: 0s }\n`;
    const a = await startTestProxy(apache.url, policy);
    const b = await startTestProxy(apache.url, policy);
    try {
      const client = '127.21.5.1';
      const blocked = async (node: typeof a) => {
        // (Should the other's batch arrive first, the ban closes the connection: a hang-up is a refusal too.)
        for (let i = 0; i < 2; i++) expect((await request(node.url, { path: '/xmlrpc.php', localAddress: client }).catch(() => ({ status: 403 }))).status).toBe(403);
      };
      // 4 strikes on each at once: each node reaches 6 with the other's batch and bans.
      await Promise.all([blocked(a), blocked(b)]);
      const banned = (node: typeof a) => node.logs.filter((line) => line.msg === 'banned' && line.target === client).length;
      await within(1_000, async () => banned(a) >= 1 && banned(b) >= 1);
      // Time for each node's ban to reach the other.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const issued = async (node: typeof a) => Number(/^portcullis_bans_total\{scope="ip",backend="none",mode="enforced"\} (\d+)$/m.exec((await request(node.adminUrl, { path: '/metrics' })).body)?.[1]);
      expect([banned(a), banned(b)]).toEqual([1, 1]);
      expect([await issued(a), await issued(b)]).toEqual([1, 1]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('after Redis restarts, the nodes subscribe again: a ban made then reaches the other node within a second', async () => {
    const prefix = `resub${process.pid}:`;
    const token = 'cluster-resub-token-0123456789';
    const base = `${pagesPolicy(redis.url, prefix)}escalation: { tarpit: 0s }\n`;
    const a = await startTestProxy(apache.url, base, { adminToken: token });
    const b = await startTestProxy(apache.url, base);
    try {
      await redis.kill();
      await redis.restart();
      const connected = async (node: typeof a) => /answers$/.test((JSON.parse((await request(node.adminUrl, { path: '/readyz' })).body) as { checks: Record<string, { detail: string }> }).checks.store?.detail ?? '');
      await within(5_000, async () => (await connected(a)) && (await connected(b)));
      // Both reconcile on reconnect; a ban made after that travels only by the channel.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const banned = await request(a.adminUrl, { method: 'POST', path: '/bans', body: JSON.stringify({ ip: '127.21.6.1', duration: '1h' }), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
      expect(banned.status).toBe(201);
      await within(1_000, async () => b.running.ledger.active().some((ban) => ban.target === '127.21.6.1'));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('while Redis is slow (connected, but paused), no request waits past store.timeout, and limits hold on the node', async () => {
    const node = await startTestProxy(apache.url, `store: { type: redis, url: "${redis.url}", prefix: "slow${process.pid}:", timeout: ${TIMEOUT_MS}ms }\nlimits:\n  - name: pages\n    methods: [GET]\n    per_ip: { rate: 1/min, burst: 5 }\n`);
    const admin = new Redis(redis.url);
    try {
      const client = '127.21.7.1';
      expect((await request(node.url, { path: '/', localAddress: client })).status).toBe(200);
      // Redis holds every command for 2 s: the connection stays up, answers do not come.
      await admin.call('CLIENT', 'PAUSE', '2000', 'ALL');
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const sent = Date.now();
        statuses.push((await request(node.url, { path: '/', localAddress: client })).status);
        expect(Date.now() - sent, `request ${i}`).toBeLessThan(TIMEOUT_MS + 150);
      }
      // The node's own bucket: 4 tokens left of 5, then refused.
      expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
      expect(/portcullis_store_shared_checks_total\{outcome="timeout"\} 4/.test((await request(node.adminUrl, { path: '/metrics' })).body)).toBe(true);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);
      admin.disconnect();
      await node.close();
    }
  });

  it('a reconcile that fails while Redis stays connected is tried again, not only at the next reconnect', async () => {
    const prefix = `retry${process.pid}:`;
    const writer = new Redis(redis.url);
    try {
      // The bans key holds the wrong type: reading it fails, the connection stays up (as with a Redis too slow for one reconcile).
      await writer.set(`${prefix}bans`, 'not a hash');
      const node = await startTestProxy(apache.url, `${pagesPolicy(redis.url, prefix)}escalation: { tarpit: 0s }\n`);
      try {
        await within(2_000, async () => node.logs.some((line) => /could not reconcile/.test(String(line.msg))));
        // Another node's ban, written while this one was not reading.
        const now = Date.now();
        const ban = { target: '127.21.8.1', scope: 'ip', family: 4, prefix: '127.21.8.0/24', source: 'manual', reason: 'by hand on another node', startedAt: now, expiresAt: now + 3_600_000, nth: 1, dryRun: false };
        await writer.del(`${prefix}bans`);
        await writer.hset(`${prefix}bans`, ban.target, JSON.stringify(ban));
        await within(5_000, async () => node.running.ledger.active().some((entry) => entry.target === '127.21.8.1'));
      } finally {
        await node.close();
      }
    } finally {
      writer.disconnect();
    }
  });

  it('an expired ban leaves the shared hash when it ends, not only at the next reconcile: the hash stays as large as the live bans', async () => {
    const prefix = `expire${process.pid}:`;
    const token = 'cluster-expire-token-0123456789';
    const node = await startTestProxy(apache.url, `${pagesPolicy(redis.url, prefix)}escalation: { tarpit: 0s }\n`, { adminToken: token });
    const reader = new Redis(redis.url);
    try {
      const ban = async (ip: string, duration: string) => {
        const response = await request(node.adminUrl, { method: 'POST', path: '/bans', body: JSON.stringify({ ip, duration }), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } });
        expect(response.status).toBe(201);
      };
      await ban('127.21.9.1', '1s');
      await ban('127.21.9.2', '1h');
      await within(1_000, async () => (await reader.hlen(`${prefix}bans`)) === 2);
      // The 1 s ban ends; the node sweeps its bans every second.
      await within(4_000, async () => (await reader.hexists(`${prefix}bans`, '127.21.9.1')) === 0);
      expect(await reader.hexists(`${prefix}bans`, '127.21.9.2')).toBe(1);
    } finally {
      reader.disconnect();
      await node.close();
    }
  });

  it('an upgrade whose client leaves during the shared check holds nothing afterwards (no upgraded connection counted for good)', async () => {
    const node = await startTestProxy(apache.url, `store: { type: redis, url: "${redis.url}", prefix: "upg${process.pid}:", timeout: 300ms }\nlimits:\n  - name: pages\n    methods: [GET]\n    per_ip: { rate: 100/s, burst: 100 }\n`);
    const admin = new Redis(redis.url);
    try {
      // Redis holds every command: each shared check waits its 300 ms.
      await admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
      for (let i = 0; i < 3; i++) {
        const socket = net.connect({ port: node.port, host: '127.0.0.1', localAddress: '127.21.10.1' });
        socket.on('error', () => {});
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        socket.write('GET /chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
        // Gone (a reset) before the shared check answers.
        await new Promise((resolve) => setTimeout(resolve, 50));
        socket.resetAndDestroy();
      }
      // Past every check's timeout.
      await new Promise((resolve) => setTimeout(resolve, 600));
      const open = /^portcullis_upgraded_connections (\d+)$/m.exec((await request(node.adminUrl, { path: '/metrics' })).body)?.[1];
      expect(open).toBe('0');
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);
      admin.disconnect();
      await node.close();
    }
  });

  it('a request whose client leaves during the shared check is not forwarded to Apache afterwards', async () => {
    const node = await startTestProxy(apache.url, `store: { type: redis, url: "${redis.url}", prefix: "gone${process.pid}:", timeout: 300ms }\nlimits:\n  - name: pages\n    methods: [GET]\n    per_ip: { rate: 100/s, burst: 100 }\n`);
    const admin = new Redis(redis.url);
    try {
      const forwarded = async () => Number(/^portcullis_upstream_request_duration_seconds_count (\d+)$/m.exec((await request(node.adminUrl, { path: '/metrics' })).body)?.[1] ?? Number.NaN);
      expect(await forwarded()).toBe(0);
      await admin.call('CLIENT', 'PAUSE', '3000', 'ALL');
      for (let i = 0; i < 3; i++) {
        const socket = net.connect({ port: node.port, host: '127.0.0.1', localAddress: '127.21.11.1' });
        socket.on('error', () => {});
        await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
        socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
        // Gone (a reset) before the shared check answers.
        await new Promise((resolve) => setTimeout(resolve, 50));
        socket.resetAndDestroy();
      }
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(await forwarded()).toBe(0);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);
      admin.disconnect();
      await node.close();
    }
  });

  it('a Redis that keeps missing the timeout now and then is one outage in the log, not two lines per slow request', async () => {
    const node = await startTestProxy(apache.url, `store: { type: redis, url: "${redis.url}", prefix: "flap${process.pid}:", timeout: ${TIMEOUT_MS}ms }\nlimits:\n  - name: pages\n    methods: [GET]\n    per_ip: { rate: 100/s, burst: 100 }\n`);
    const admin = new Redis(redis.url);
    try {
      const lines = (pattern: RegExp) => node.logs.filter((line) => pattern.test(String(line.msg))).length;
      const get = () => request(node.url, { path: '/', localAddress: '127.21.12.1' });
      // Six times: one check past the timeout (Redis paused), then one answered.
      for (let i = 0; i < 6; i++) {
        await admin.call('CLIENT', 'PAUSE', String(TIMEOUT_MS + 100), 'ALL');
        expect((await get()).status).toBe(200);
        await new Promise((resolve) => setTimeout(resolve, 150));
        expect((await get()).status).toBe(200);
      }
      expect(lines(/unreachable/)).toBe(1);
      // Answering steadily again ends the outage, in one line.
      for (let i = 0; i < 30; i++) expect((await get()).status).toBe(200);
      expect(lines(/answers again/)).toBe(1);
    } finally {
      await admin.call('CLIENT', 'UNPAUSE').catch(() => undefined);
      admin.disconnect();
      await node.close();
    }
  });
});
