import type tls from 'node:tls';
import type { Logger } from 'pino';
import type { Clock, WallClock } from '../core/clock.js';
import type { Timers } from '../core/timers.js';
import type { DecisionEngine } from '../engine/decision-engine.js';
import type { ClientResolver } from '../identity/client-resolver.js';
import type { SharedBucketStore } from '../limiter/shared-bucket-store.js';
import type { ConnectionMetrics } from '../metrics/connection-metrics.js';
import type { AccessLog } from './access-log.js';
import type { Buffering } from './buffering/buffering.js';
import type { ClientConnections } from './client-connections.js';
import type { HandshakeLimit } from './listeners/handshake-limiter.js';
import type { RequestObserver } from './request-observer.js';
import type { SiteRouting } from './site-routing.js';
import type { UpgradedConnections } from './upgraded-connections.js';
import type { UpstreamSlots } from './upstream-slots.js';

/** What the proxy server is assembled from; see `createPortcullis` for the real wiring. */
export interface ProxyServerParts {
  readonly engine: DecisionEngine;
  readonly resolver: ClientResolver;
  readonly slots: UpstreamSlots;
  /** Request bodies received and responses read ahead of slow clients (`buffering:`). */
  readonly buffering: Buffering;
  readonly connections: ClientConnections;
  /** Spliced upgrade connections per client, capped apart from upstream slots. */
  readonly upgraded: UpgradedConnections;
  readonly observer: RequestObserver;
  readonly connectionMetrics: ConnectionMetrics;
  /** Apache `combined` log of forwarded requests (and of refused ones, with `access_log_refused`); null: none. */
  readonly accessLog: AccessLog | null;
  /** Per-site upstreams and caps (`sites:`); absent: every request goes where its listener sends it, under `slots`. */
  readonly sites?: SiteRouting;
  /** Cluster mode: the buckets every node shares, asked after the node's own admitted a request; absent: this node alone. */
  readonly sharedStore?: SharedBucketStore;
  readonly clock: Clock;
  /** Wall-clock time, for the access log's `%t`. */
  readonly wall: WallClock;
  readonly timers: Timers;
  readonly logger: Logger;
}

/** What a TLS listener needs besides its ListenerSpec: from the certificate store and `timeouts.tls_handshake`. */
export interface TlsSetup {
  readonly secure: tls.TlsOptions;
  readonly handshakeTimeoutMs: number;
  /** Told of each TLS server built, so certificate reloads and ticket-key rotation reach it. */
  attach?(server: tls.Server): void;
}

/** Client-side connection limits, from `timeouts` and `request` in the policy. */
export interface ProxyServerLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxBodyBytes: number;
  /** How long a banned client's answer is held; 0: at once. */
  readonly tarpitMs: number;
  /** Answers held at once, at most. */
  readonly tarpitMax: number;
  /** Open connections per untrusted peer address (`connections.per_client_max`). */
  readonly connectionsPerClientMax: number;
  /** Open client connections in total (`connections.max`). */
  readonly connectionsMax: number;
  /** New connections to a TLS port per untrusted peer address (`connections.tls_handshakes`). */
  readonly tlsHandshakes: HandshakeLimit;
}
