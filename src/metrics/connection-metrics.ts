import { Counter, Gauge, type Registry } from 'prom-client';

/** Why a client connection was closed before it could send a request. A closed set. */
export type ConnectionRefusal = 'per_client_max' | 'max';

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

  constructor(registry: Registry, sources: ConnectionGaugeSources) {
    const registers = [registry];
    this.#refused = new Counter({
      name: 'portcullis_connections_refused_total',
      help: 'Client connections closed at once by a cap: per_client_max (a strike for the client) or max (the total; nobody is struck).',
      labelNames: ['reason'],
      registers,
    });
    for (const reason of ['per_client_max', 'max'] as const) this.#refused.inc({ reason }, 0);
    new Gauge({ name: 'portcullis_client_connections', help: 'Client connections open now, idle keep-alive ones included.', registers, collect() { this.set(sources.open()); } });
    new Gauge({ name: 'portcullis_upgraded_connections', help: 'Upgraded (WebSocket) connections open now.', registers, collect() { this.set(sources.upgraded()); } });
  }

  /** Counts a connection a cap closed. */
  countRefused(reason: ConnectionRefusal): void {
    this.#refused.inc({ reason });
  }
}
