import { Counter, Gauge, type Registry } from 'prom-client';
import { HANDSHAKE_FAILURE_REASONS, type HandshakeFailureReason } from '../proxy/listeners/handshake-failure.js';

/** Why a client connection was closed before it could send a request. A closed set. */
export type ConnectionRefusal = 'per_client_max' | 'max' | 'banned';

/** Live values read on each scrape. */
export interface ConnectionGaugeSources {
  /** Client connections open now. */
  open(): number;
  /** Upgraded (WebSocket) connections open now. */
  upgraded(): number;
}

/** Metrics of client connections: how many are open, and how many the caps turned away. */
export class ConnectionMetrics {
  readonly #refused: Counter<'reason'>;
  readonly #handshakeFailures: Counter<'reason'>;

  constructor(registry: Registry, sources: ConnectionGaugeSources) {
    const registers = [registry];
    this.#refused = new Counter({
      name: 'portcullis_connections_refused_total',
      help: 'Client connections closed before any TLS or HTTP work: per_client_max (a strike), max (the total; nobody is struck), banned (TLS ports: held for the tarpit, then closed).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['per_client_max', 'max', 'banned'] as const) this.#refused.inc({ reason }, 0);
    this.#handshakeFailures = new Counter({
      name: 'portcullis_tls_handshake_failures_total',
      help: 'TLS handshakes that failed, by reason (timeout, no_shared_protocol, no_certificate, reset, other).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of HANDSHAKE_FAILURE_REASONS) this.#handshakeFailures.inc({ reason }, 0);
    new Gauge({ name: 'portcullis_client_connections', help: 'Client connections open now, idle keep-alive ones included.', registers, collect() { this.set(sources.open()); } });
    new Gauge({ name: 'portcullis_upgraded_connections', help: 'Upgraded (WebSocket) connections open now.', registers, collect() { this.set(sources.upgraded()); } });
  }

  /** Counts a failed TLS handshake. */
  countHandshakeFailure(reason: HandshakeFailureReason): void {
    this.#handshakeFailures.inc({ reason });
  }

  /** Counts a connection a cap closed. */
  countRefused(reason: ConnectionRefusal): void {
    this.#refused.inc({ reason });
  }
}
