import { Counter, Gauge, type Registry } from 'prom-client';
import { HANDSHAKE_FAILURE_REASONS, type HandshakeFailureReason } from '../proxy/listeners/handshake-failure.js';
import { HTTP2_ABUSE_KINDS, type Http2AbuseKind } from '../proxy/listeners/http2-abuse.js';

/** Why a client connection was closed before it could send a request. A closed set. */
export type ConnectionRefusal = 'per_client_max' | 'max' | 'banned' | 'tls_handshakes';

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
  readonly #http2Abuse: Counter<'kind'>;

  constructor(registry: Registry, sources: ConnectionGaugeSources) {
    const registers = [registry];
    this.#refused = new Counter({
      name: 'portcullis_connections_refused_total',
      help: 'Client connections closed before any TLS or HTTP work: per_client_max (a strike), max (the total; nobody is struck), banned (TLS ports: held for the tarpit, then closed), tls_handshakes (TLS ports: past the address\'s handshake bucket; a strike).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['per_client_max', 'max', 'banned', 'tls_handshakes'] as const) this.#refused.inc({ reason }, 0);
    this.#handshakeFailures = new Counter({
      name: 'portcullis_tls_handshake_failures_total',
      help: 'TLS handshakes that failed, by reason (timeout, no_shared_protocol, no_certificate, reset, other).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of HANDSHAKE_FAILURE_REASONS) this.#handshakeFailures.inc({ reason }, 0);
    this.#http2Abuse = new Counter({
      name: 'portcullis_http2_abuse_total',
      help: `HTTP/2 sessions ended for abuse (each a strike), by kind: ${HTTP2_ABUSE_KINDS.join(', ')}.`,
      labelNames: ['kind'],
      registers,
    });
    for (const kind of HTTP2_ABUSE_KINDS) this.#http2Abuse.inc({ kind }, 0);
    new Gauge({ name: 'portcullis_client_connections', help: 'Client connections open now, idle keep-alive ones included.', registers, collect() { this.set(sources.open()); } });
    new Gauge({ name: 'portcullis_upgraded_connections', help: 'Upgraded (WebSocket) connections open now.', registers, collect() { this.set(sources.upgraded()); } });
  }

  /** Counts a failed TLS handshake. */
  countHandshakeFailure(reason: HandshakeFailureReason): void {
    this.#handshakeFailures.inc({ reason });
  }

  /** Counts an HTTP/2 session ended for abuse. */
  countHttp2Abuse(kind: Http2AbuseKind): void {
    this.#http2Abuse.inc({ kind });
  }

  /** Counts a connection a cap closed. */
  countRefused(reason: ConnectionRefusal): void {
    this.#refused.inc({ reason });
  }
}
