import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { systemWallClock, type WallClock } from '../core/clock.js';
import type { ShadowRefusal } from '../engine/decision.js';
import type { ForwardOutcome } from '../proxy/forwarder.js';

/** What became of a request, as the `decision` label says it. A closed set. */
export type RequestOutcome = 'allowed' | 'limited' | 'blocked' | 'banned' | 'rejected' | 'queue_full' | 'queued_timeout';

/** Live values the gauges read on each scrape, so they can never drift from the truth. */
export interface ProxyGaugeSources {
  upstreamInFlight(): number;
  upstreamQueued(): number;
  /** Client keys with state, per table: bucket keys by scope, strike counters, concurrency. */
  trackedClients(): Record<string, number>;
  /** Banned clients' connections whose answer is being held (escalation.tarpit). */
  tarpitHeld(): number;
}

/**
 * Metrics of the request path. Labels are closed sets (decisions, rule names
 * from the policy, error kinds), never a client address. The counter children
 * are cached so counting an admitted request is one addition.
 */
export class ProxyMetrics {
  readonly #requests: Counter<'decision' | 'rule'>;
  readonly #children = new Map<string, Counter.Internal>();
  /**
   * Allowed requests not yet added to the counter: one addition per request
   * instead of prom-client's label hashing, handed over at each scrape.
   */
  #allowedPending = 0;
  readonly #shadow: Counter<'kind' | 'rule'>;
  readonly #strikes: Counter<'rule'>;
  readonly #upstreamDuration: Histogram;
  readonly #upstreamErrors: Counter<'kind'>;
  readonly #reloads: Counter<'result'>;
  readonly #reloadOk: Gauge;
  readonly #reloadTime: Gauge;
  readonly #wall: WallClock;

  constructor(registry: Registry, sources: ProxyGaugeSources, wall: WallClock = systemWallClock) {
    this.#wall = wall;
    const registers = [registry];
    this.#requests = new Counter({
      name: 'portcullis_requests_total',
      help: 'Requests by decision (allowed, limited, blocked, banned, rejected, queue_full, queued_timeout) and the rule that made it.',
      labelNames: ['decision', 'rule'],
      registers,
      collect: () => {
        if (this.#allowedPending === 0) return;
        this.#requests.inc({ decision: 'allowed', rule: '' }, this.#allowedPending);
        this.#allowedPending = 0;
      },
    });
    this.#shadow = new Counter({
      name: 'portcullis_shadow_refusals_total',
      help: 'Requests a mode: shadow rule would have refused (they were let through), by kind (limit, block) and rule.',
      labelNames: ['kind', 'rule'],
      registers,
    });
    this.#strikes = new Counter({
      name: 'portcullis_strikes_total',
      help: 'Strikes counted toward bans, by the rule that refused the request.',
      labelNames: ['rule'],
      registers,
    });
    this.#upstreamDuration = new Histogram({
      name: 'portcullis_upstream_request_duration_seconds',
      help: 'Time from forwarding a request to the end of the upstream response.',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.#upstreamErrors = new Counter({
      name: 'portcullis_upstream_errors_total',
      help: 'Forwarded requests that failed on the upstream side, by kind (unreachable, timeout, error).',
      labelNames: ['kind'],
      registers,
    });
    new Gauge({
      name: 'portcullis_upstream_in_flight',
      help: 'Requests being served by the upstream now (capped by concurrency.upstream_max).',
      registers,
      collect() {
        this.set(sources.upstreamInFlight());
      },
    });
    new Gauge({
      name: 'portcullis_upstream_queue_length',
      help: 'Requests waiting for an upstream slot now.',
      registers,
      collect() {
        this.set(sources.upstreamQueued());
      },
    });
    new Gauge({
      name: 'portcullis_tarpit_connections',
      help: 'Banned clients\' connections whose answer is being held now (escalation.tarpit, capped by escalation.tarpit_max).',
      registers,
      collect() {
        this.set(sources.tarpitHeld());
      },
    });
    new Gauge({
      name: 'portcullis_tracked_clients',
      help: 'Client keys with state, by table (ip and prefix buckets, strikes, concurrency); each table is capped.',
      labelNames: ['table'],
      registers,
      collect() {
        for (const [table, count] of Object.entries(sources.trackedClients())) this.set({ table }, count);
      },
    });
    this.#reloads = new Counter({
      name: 'portcullis_config_reloads_total',
      help: 'Policy reloads, by result (success, failure).',
      labelNames: ['result'],
      registers,
    });
    this.#reloadOk = new Gauge({
      name: 'portcullis_config_last_reload_successful',
      help: 'Whether the last policy reload succeeded (1) or was rejected and the previous policy kept (0).',
      registers,
    });
    this.#reloadTime = new Gauge({
      name: 'portcullis_config_last_reload_success_timestamp_seconds',
      help: 'When the policy in force was loaded (Unix time).',
      registers,
    });
    this.#reloadOk.set(1);
    this.#reloadTime.set(wall.epochMs() / 1000);
    for (const result of ['success', 'failure']) this.#reloads.inc({ result }, 0);
  }

  /** Counts one request's fate; `rule` is empty for allowed requests. */
  countRequest(decision: RequestOutcome, rule: string): void {
    // The common case, without building a key string per request.
    if (decision === 'allowed') {
      this.#allowedPending++;
      return;
    }
    const key = `${decision}\u0000${rule}`;
    let child = this.#children.get(key);
    if (child === undefined) {
      // Rule names come from the policy, decisions from a closed set: the map stays small.
      child = this.#requests.labels({ decision, rule });
      this.#children.set(key, child);
    }
    child.inc();
  }

  countShadow(shadow: ShadowRefusal): void {
    this.#shadow.inc({ kind: shadow.kind, rule: shadow.rule });
  }

  countStrikes(rule: string, weight: number): void {
    this.#strikes.inc({ rule }, weight);
  }

  /** Records a finished upstream exchange. */
  observeUpstream(outcome: ForwardOutcome, seconds: number): void {
    if (outcome === 'client_aborted' || outcome === 'body_too_large') return;
    this.#upstreamDuration.observe(seconds);
    if (outcome !== 'ok') this.#upstreamErrors.inc({ kind: outcome.replace(/^upstream_/, '') });
  }

  /** Records a policy reload's result. */
  countReload(ok: boolean): void {
    this.#reloads.inc({ result: ok ? 'success' : 'failure' });
    this.#reloadOk.set(ok ? 1 : 0);
    if (ok) this.#reloadTime.set(this.#wall.epochMs() / 1000);
  }
}
