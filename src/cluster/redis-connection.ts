import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { StoreConfig } from '../config/schema.js';

/** The one client type the cluster code talks to: a server, a Sentinel-managed master, or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/**
 * Opens the Redis connection `store` names, with the options cluster mode
 * needs: auto-pipelining (one round trip carries every request of a busy
 * moment), no offline queue (a command while disconnected fails at once
 * instead of waiting), and `store.timeout` on every command, so no request
 * waits longer than that for Redis. ioredis reconnects by itself.
 */
export function openRedis(store: StoreConfig, options: { readonly subscriber?: boolean } = {}): RedisClient {
  const common: RedisOptions = {
    enableAutoPipelining: true,
    enableOfflineQueue: options.subscriber === true,
    // A subscriber only waits for messages: the request timeout is for the commands requests wait on.
    ...(options.subscriber === true ? {} : { commandTimeout: store.timeout }),
    maxRetriesPerRequest: options.subscriber === true ? null : 0,
    lazyConnect: true,
    retryStrategy: (times) => Math.min(times * 100, 2_000),
  };
  if (store.cluster) {
    const url = new URL(store.url as string);
    return new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
      enableAutoPipelining: true,
      enableOfflineQueue: options.subscriber === true,
      lazyConnect: true,
      redisOptions: { ...common, ...credentials(url) },
    });
  }
  if (store.sentinels.length > 0) {
    return new Redis({
      ...common,
      sentinels: store.sentinels.map((address) => {
        const colon = address.lastIndexOf(':');
        return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) };
      }),
      name: store.sentinel_name as string,
    });
  }
  return new Redis(store.url as string, common);
}

function credentials(url: URL): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  return {
    ...(url.username === '' ? {} : { username: decodeURIComponent(url.username) }),
    ...(url.password === '' ? {} : { password: decodeURIComponent(url.password) }),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}
