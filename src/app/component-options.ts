import type { Logger } from 'pino';
import { parseListenAddress, type ListenAddress } from '../config/listen-address.js';
import type { ListenerConfig, PolicyConfig } from '../config/schema.js';
import type { Clock } from '../core/clock.js';
import { ClientResolver } from '../identity/client-resolver.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import type { ProxyServerLimits } from '../proxy/proxy-server.js';
import type { ListenerSpec, UpstreamRoute } from '../proxy/listeners/listener-spec.js';
import type { UndiciForwarderOptions } from '../proxy/undici-forwarder.js';
import type { UpstreamSlotsOptions } from '../proxy/upstream-slots.js';

/*
 * The policy, translated into each component's own options: one place that
 * knows both the policy's key names and the components' settings, used at
 * start and at every reload alike.
 */

/** The client resolver for a policy: trusted proxies and prefix lengths. */
export function createResolver(config: PolicyConfig, policy: CompiledPolicy, clock: Clock, logger: Logger): ClientResolver {
  return new ClientResolver({
    trustedProxies: policy.trustedProxies,
    prefix: config.clients.prefix,
    clock,
    onUntrustedForwardedFor: (peerIp) =>
      logger.warn({ peer: peerIp }, 'X-Forwarded-For from a peer not in clients.trusted_proxies was ignored; if this peer is your CDN or load balancer, add it there (logged once per peer per hour)'),
  });
}

/** The proxy server's client-side limits. */
export function serverLimits(config: PolicyConfig): ProxyServerLimits {
  return {
    headersTimeoutMs: config.timeouts.client_headers,
    requestTimeoutMs: config.timeouts.client_request,
    keepAliveTimeoutMs: config.timeouts.client_keepalive,
    maxBodyBytes: config.request.max_body,
    tarpitMs: config.escalation.tarpit,
    tarpitMax: config.escalation.tarpit_max,
    connectionsPerClientMax: config.connections.per_client_max,
    connectionsMax: config.connections.max,
    tlsHandshakes: { ratePerMs: config.connections.tls_handshakes.rate.perMs, burst: config.connections.tls_handshakes.burst },
  };
}

/** The forwarder to one upstream. */
export function forwarderOptions(config: PolicyConfig, upstream: string): UndiciForwarderOptions {
  return {
    upstream,
    connections: config.concurrency.upstream_max,
    connectTimeoutMs: config.timeouts.upstream_connect,
    headersTimeoutMs: config.timeouts.upstream_headers,
    bodyTimeoutMs: config.timeouts.upstream_body,
    maxBodyBytes: config.request.max_body,
  };
}

/** A `listen` entry, bound to the forwarders of its upstream. */
export function listenerSpec(listener: ListenerConfig, route: UpstreamRoute): ListenerSpec {
  const { host, port } = parseListenAddress(listener.address) as ListenAddress;
  return { host, port, tls: listener.tls, redirectHttps: listener.redirect_https, route };
}

/** Upstream admission. */
export function slotOptions(config: PolicyConfig): UpstreamSlotsOptions {
  return {
    upstreamMax: config.concurrency.upstream_max,
    perClientMax: config.concurrency.per_client_max,
    queueMax: config.concurrency.queue_max,
    perClientQueueMax: config.concurrency.per_client_queue_max,
    queueTimeoutMs: config.concurrency.queue_timeout,
  };
}
