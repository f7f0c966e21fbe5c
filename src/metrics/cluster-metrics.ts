import { Counter, Gauge, type Registry } from 'prom-client';

/** Outcomes of a shared bucket check. */
export const SHARED_CHECK_OUTCOMES = ['admitted', 'refused', 'timeout', 'down', 'error'] as const;
export type SharedCheckOutcome = (typeof SHARED_CHECK_OUTCOMES)[number];

/** What cluster messages carry. */
export const CLUSTER_MESSAGE_KINDS = ['strikes', 'ban', 'lift'] as const;
export type ClusterMessageKind = (typeof CLUSTER_MESSAGE_KINDS)[number];

/** Metrics of cluster mode: the shared store's health and what nodes tell each other. */
export class ClusterMetrics {
  readonly #up: Gauge;
  readonly #checks: Counter<'outcome'>;
  readonly #messages: Counter<'kind' | 'direction'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#up = new Gauge({
      name: 'portcullis_store_shared_up',
      help: '1 while the shared store (Redis) answers, 0 while this node decides on its own buckets only (each node then allows the full rate by itself).',
      registers,
    });
    this.#checks = new Counter({
      name: 'portcullis_store_shared_checks_total',
      help: 'Requests the node admitted that were checked against the shared buckets, by outcome; timeout, down and error kept the local decision.',
      labelNames: ['outcome'],
      registers,
    });
    this.#messages = new Counter({
      name: 'portcullis_cluster_messages_total',
      help: 'Strike batches, bans and lifts this node published to (out) or received from (in) the other nodes (received counts those it ignores too).',
      labelNames: ['kind', 'direction'],
      registers,
    });
    this.#up.set(1);
    for (const outcome of SHARED_CHECK_OUTCOMES) this.#checks.inc({ outcome }, 0);
    for (const kind of CLUSTER_MESSAGE_KINDS) for (const direction of ['in', 'out']) this.#messages.inc({ kind, direction }, 0);
  }

  /** Whether the shared store answers now. */
  setUp(up: boolean): void {
    this.#up.set(up ? 1 : 0);
  }

  countCheck(outcome: SharedCheckOutcome): void {
    this.#checks.inc({ outcome });
  }

  countMessage(kind: ClusterMessageKind, direction: 'in' | 'out'): void {
    this.#messages.inc({ kind, direction });
  }
}
