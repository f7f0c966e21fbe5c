import net, { type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { PolicyConfig } from '../config/schema.js';
import { parseListenAddress, type ListenAddress } from '../config/listen-address.js';
import { systemClock, type Clock } from '../core/clock.js';
import { DecisionEngine } from '../engine/decision-engine.js';
import { ClientResolver } from '../identity/client-resolver.js';
import { MemoryBucketStore } from '../limiter/stores/memory-bucket-store.js';
import { compilePolicy } from '../policy/compiled-policy.js';
import { Registry } from 'prom-client';
import { systemWallClock, type WallClock } from '../escalation/ban-persistence.js';
import { startEscalation, type EscalationRuntime } from '../escalation/escalation-runtime.js';
import type { BanBackend } from '../firewall/ban-backend.js';
import { EscalationMetrics } from '../metrics/escalation-metrics.js';
import { ClientConnections } from './client-connections.js';
import { ProxyServer } from './proxy-server.js';
import { UndiciForwarder } from './undici-forwarder.js';
import { UpstreamSlots } from './upstream-slots.js';
import { WebSocketForwarder } from './websocket-forwarder.js';

/** A running proxy. */
export interface RunningPortcullis {
  /** Where the proxy actually listens (the real port when the policy said 0). */
  readonly address: AddressInfo;
  readonly engine: DecisionEngine;
  /** Upstream admission, for status and tests. */
  readonly slots: UpstreamSlots;
  readonly escalation: EscalationRuntime;
  /** Every metric portcullis keeps (served by the admin API). */
  readonly registry: Registry;
  /** Graceful stop: in-flight requests get up to `graceMs` to finish. */
  close(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly wall?: WallClock;
  /** Overrides the policy's firewall backend (tests drive one inside a network namespace). */
  readonly banBackend?: BanBackend;
}

/** Tries one TCP connection to the upstream; resolves to null when it accepts, else to the error message. */
function probeUpstream(upstream: string, timeoutMs: number): Promise<string | null> {
  const url = new URL(upstream);
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  return new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port, timeout: timeoutMs });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(`no answer within ${timeoutMs} ms`);
    });
    socket.once('error', (error) => resolve(error.message));
  });
}

/** Assembles identity, engine, admission and forwarding from a validated policy and starts listening. */
export async function startPortcullis(config: PolicyConfig, options: StartOptions): Promise<RunningPortcullis> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const policy = compilePolicy(config);
  const registry = new Registry();
  const escalation = await startEscalation(config, {
    clock,
    wall: options.wall ?? systemWallClock,
    logger,
    metrics: new EscalationMetrics(registry),
    ...(options.banBackend ? { backend: options.banBackend } : {}),
  });
  const engine = new DecisionEngine(policy, new MemoryBucketStore(config.clients.max_tracked), escalation);
  const resolver = new ClientResolver({
    trustedProxies: policy.trustedProxies,
    prefix: config.clients.prefix,
    clock,
    onUntrustedForwardedFor: (peerIp) =>
      logger.warn({ peer: peerIp }, 'X-Forwarded-For from a peer not in clients.trusted_proxies was ignored; if this peer is your CDN or load balancer, add it there (logged once per peer per hour)'),
  });
  const slots = new UpstreamSlots({
    upstreamMax: config.concurrency.upstream_max,
    perClientMax: config.concurrency.per_client_max,
    queueMax: config.concurrency.queue_max,
    perClientQueueMax: config.concurrency.per_client_queue_max,
    queueTimeoutMs: config.concurrency.queue_timeout,
  });
  const forwarder = new UndiciForwarder({
    upstream: config.upstream,
    connections: config.concurrency.upstream_max,
    connectTimeoutMs: config.timeouts.upstream_connect,
    headersTimeoutMs: config.timeouts.upstream_headers,
    bodyTimeoutMs: config.timeouts.upstream_body,
    maxBodyBytes: config.request.max_body,
  });
  const websockets = new WebSocketForwarder(config.upstream, logger);
  const connections = new ClientConnections();
  escalation.ledger.onChange((change) => {
    if (change.kind === 'added' && !change.ban.dryRun) connections.closeCovered(change.ban);
  });
  const server = new ProxyServer(
    { engine, resolver, slots, forwarder, websockets, connections, clock, logger },
    {
      headersTimeoutMs: config.timeouts.client_headers,
      requestTimeoutMs: config.timeouts.client_request,
      keepAliveTimeoutMs: config.timeouts.client_keepalive,
      maxBodyBytes: config.request.max_body,
    },
  );
  const listen = parseListenAddress(config.listen) as ListenAddress;
  const address = await server.listen(listen.host, listen.port);
  logger.info({ listen: `${address.address}:${address.port}`, upstream: config.upstream, limits: config.limits.length, blocks: config.block.length }, 'portcullis is listening');
  void probeUpstream(config.upstream, config.timeouts.upstream_connect).then((problem) => {
    if (problem !== null) logger.warn({ upstream: config.upstream, error: problem }, 'upstream is not accepting connections: requests will get 502 until it does (is Apache listening there?)');
  });

  return {
    address,
    engine,
    slots,
    escalation,
    registry,
    async close(graceMs = 10_000) {
      await server.close(graceMs);
      websockets.close();
      await forwarder.close();
      await escalation.close();
    },
  };
}
