import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSync } from '../../src/cluster/cluster-sync.js';
import { openRedis, type RedisClient } from '../../src/cluster/redis-connection.js';
import { parsePolicy } from '../../src/config/policy-loader.js';
import { systemClock, systemWallClock } from '../../src/core/clock.js';
import { systemTimers } from '../../src/core/timers.js';
import { BanLedger } from '../../src/escalation/ban-ledger.js';
import { Escalator } from '../../src/escalation/escalator.js';
import { NeverBanList } from '../../src/escalation/never-ban-list.js';
import { ClusterMetrics } from '../../src/metrics/cluster-metrics.js';
import { holdsWithin } from '../support/holds-within.js';
import { startRedis, type RedisHandle } from '../support/redis.js';

const PREFIX = { ipv4: 24, ipv6: 64 };

/** One node's ClusterSync on its own two real connections to `url`. */
async function node(url: string, prefix: string) {
  const policy = parsePolicy(`store: { type: redis, url: "${url}", prefix: "${prefix}" }\n`, 'test.yaml');
  const redis = openRedis(policy.store);
  const subscriber = openRedis(policy.store, { subscriber: true });
  await Promise.all([redis.connect(), subscriber.connect()]);
  const ledger = new BanLedger({ maxBans: 100, maxHistory: 100, prefix: PREFIX });
  const escalator = new Escalator({ config: policy.escalation, ledger, neverBan: new NeverBanList([]), maxTracked: 100 });
  const sync = new ClusterSync({ redis, subscriber, prefix, ledger, escalator, clientPrefix: PREFIX, clock: systemClock, wall: systemWallClock, timers: systemTimers, logger: pino({ level: 'silent' }), metrics: new ClusterMetrics(new Registry()) });
  await sync.start();
  return { redis, subscriber, ledger, sync };
}

function ban(ledger: BanLedger, target: string): void {
  const nowMs = systemClock.nowMs();
  ledger.add({ target, scope: 'ip', family: 4, prefix: '198.51.100.0/24', source: 'manual', reason: 'test', startedMs: nowMs, expiresMs: nowMs + 600_000, nth: 1, dryRun: false });
}

/** A closed ClusterSync applies nothing more to its ledger, even while its connections are still open. */
describe('ClusterSync after close(), on a real Redis', () => {
  let redis: RedisHandle;
  const connections: RedisClient[] = [];

  beforeAll(async () => {
    redis = await startRedis();
  });

  afterAll(async () => {
    for (const connection of connections) connection.disconnect();
    await redis.stop();
  });

  it('neither takes bans announced by another node nor reconciles when its connection comes back', async () => {
    const a = await node(redis.url, 'close-test:');
    const b = await node(redis.url, 'close-test:');
    connections.push(a.redis, a.subscriber, b.redis, b.subscriber);
    // The premise: while open, B hears A's ban.
    ban(a.ledger, '198.51.100.7');
    expect(await holdsWithin(3_000, () => b.ledger.active().some((held) => held.target === '198.51.100.7'))).toBe(true);

    await b.sync.close();
    ban(a.ledger, '198.51.100.8');
    // A reconnect of B's command connection would reconcile the shared hash into B's ledger.
    const ready = new Promise((resolve) => b.redis.once('ready', resolve));
    await a.redis.call('CLIENT', 'KILL', 'ID', String(await b.redis.call('CLIENT', 'ID')));
    await ready;
    expect(await holdsWithin(500, () => b.ledger.active().some((held) => held.target === '198.51.100.8'))).toBe(false);
    await a.sync.close();
  });
});
