import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { PolicyConfig } from '../config/schema.js';
import type { Clock, WallClock } from '../core/clock.js';
import type { Timers } from '../core/timers.js';
import type { BanLedger } from '../escalation/ban-ledger.js';
import type { Escalator } from '../escalation/escalator.js';
import type { ClientKey } from '../identity/client-key.js';
import { ClusterSync } from '../cluster/cluster-sync.js';
import { loggedStoreEvents, RedisBucketStore } from '../cluster/redis-bucket-store.js';
import { openRedis } from '../cluster/redis-connection.js';
import { ClusterMetrics } from '../metrics/cluster-metrics.js';

/** Cluster mode as the rest of the node sees it. */
export interface RunningCluster {
  readonly store: RedisBucketStore;
  /** A strike this node counted, for the other nodes. */
  strike(client: ClientKey, weight: number, rule: string, site: string | undefined): void;
  /** For /readyz: always ok (a node without Redis still protects), the detail says whether it is degraded. */
  health(): { ok: true; detail: string };
  close(): Promise<void>;
}

export interface ClusterDeps {
  readonly ledger: BanLedger;
  readonly escalator: Escalator;
  readonly clock: Clock;
  readonly wall: WallClock;
  readonly timers: Timers;
  readonly logger: Logger;
  readonly registry: Registry;
}

/**
 * Connects to the shared store `store:` names and starts sharing buckets,
 * strikes and bans. Never fails the start: a node whose Redis is down
 * decides on its own buckets, says so once, and joins when Redis answers.
 */
export async function startCluster(config: PolicyConfig, deps: ClusterDeps): Promise<RunningCluster> {
  const { logger } = deps;
  const where = config.store.url ?? `sentinels ${config.store.sentinels.join(', ')}`;
  const metrics = new ClusterMetrics(deps.registry);
  const redis = openRedis(config.store);
  const subscriber = openRedis(config.store, { subscriber: true });
  // ioredis reports connection errors as events; the store and the log line per outage say what matters.
  redis.on('error', () => {});
  subscriber.on('error', () => {});
  const sync = new ClusterSync({ redis, subscriber, prefix: config.store.prefix, ledger: deps.ledger, escalator: deps.escalator, clientPrefix: config.clients.prefix, clock: deps.clock, wall: deps.wall, timers: deps.timers, logger, metrics });
  const store = new RedisBucketStore(redis, config.store.prefix, metrics, loggedStoreEvents(logger), { ms: config.store.timeout, timers: deps.timers });
  redis.on('ready', () => store.connected());
  await Promise.all([redis.connect(), subscriber.connect()]).catch((error: Error) => {
    store.startedDown();
    logger.warn({ store: where, err: error.message }, 'shared store (Redis) unreachable at start: deciding on this node\'s own buckets until it answers');
  });
  await sync.start();
  logger.info({ store: where, prefix: config.store.prefix }, 'cluster mode: buckets, strikes and bans shared through Redis');
  return {
    store,
    strike: (client, weight, rule, site) => sync.strike(client, weight, rule, site),
    health: () => ({ ok: true, detail: store.up && redis.status === 'ready' ? `shared store ${where} answers` : `degraded: shared store ${where} unreachable, limits are this node's own` }),
    async close() {
      await sync.close();
      redis.disconnect();
      subscriber.disconnect();
    },
  };
}
