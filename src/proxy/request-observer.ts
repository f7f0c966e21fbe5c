import type { Logger } from 'pino';
import type { Decision } from '../engine/decision.js';
import type { ClientKey } from '../identity/client-key.js';
import type { DecisionRates } from '../metrics/decision-rates.js';
import type { ProxyMetrics, RequestOutcome } from '../metrics/proxy-metrics.js';
import type { RecentOffenders } from '../metrics/recent-offenders.js';
import type { SiteMetrics } from '../metrics/site-metrics.js';
import { DEFAULT_SITE_NAME } from '../policy/compiled-site.js';
import type { ForwardOutcome } from './forwarder.js';
import type { SiteDecisionRates } from '../metrics/site-decision-rates.js';

/** Whatever wants to hear of refused requests besides metrics (the attack alert). */
export interface RefusalListener {
  recordRefusals(count: number, nowMs: number): void;
}

/** A request as logs describe it. */
export interface ObservedRequest {
  readonly client: ClientKey;
  readonly method: string;
  readonly target: string;
  /** The site its host chose; null: none (no usable Host); absent: the default site. */
  readonly site?: { readonly name: string } | null;
}

export interface RequestObserverParts {
  readonly metrics: ProxyMetrics;
  readonly rates: DecisionRates;
  readonly offenders: RecentOffenders;
  /** Clients whose requests a shadow rule would have refused, so each is logged once per window. */
  readonly shadowed: RecentOffenders;
  readonly logger: Logger;
  readonly refusals: RefusalListener;
  /** Requests per site; absent: not counted. */
  readonly sites?: SiteMetrics;
  /** Rates per site for `portcullis status`; absent: the policy has no sites. */
  readonly siteRates?: SiteDecisionRates;
}

const OUTCOME_OF = { limit: 'limited', block: 'blocked', ban: 'banned', reject: 'rejected' } as const;

/**
 * Everything the proxy reports about a request, in one place: metrics, the
 * rates and top lists of `portcullis status`, the attack alert, and a log
 * line for a client's first refusal in a window (one per request would bury
 * the log during a flood; the counters have the full numbers).
 */
export class RequestObserver {
  readonly #parts: RequestObserverParts;

  constructor(parts: RequestObserverParts) {
    this.#parts = parts;
  }

  /** Reports the engine's decision on a request. */
  decided(request: ObservedRequest, decision: Decision, nowMs: number): void {
    const { metrics, rates } = this.#parts;
    if (decision.action === 'allow') {
      metrics.countRequest('allowed', '');
      this.#parts.sites?.count(siteName(request), 'allowed', '');
      this.#parts.siteRates?.record(siteName(request), 'allowed', nowMs);
      rates.record('allowed', nowMs);
      if (decision.shadow !== null) {
        metrics.countShadow(decision.shadow);
        if (this.#parts.shadowed.record(request.client, decision.shadow.rule, nowMs)) {
          this.#parts.logger.info(
            { ...describe(request), shadow: decision.shadow.kind, rule: decision.shadow.rule },
            `shadow rule ${decision.shadow.rule} would have refused this client (let through; logged once per client per window)`,
          );
        }
      }
      return;
    }
    const rule = decision.action === 'ban' ? 'ban' : decision.action === 'reject' ? 'malformed' : decision.rule;
    const fields = decision.action === 'ban' ? { status: decision.status, ban: decision.target } : { status: decision.status };
    this.#refused(request, OUTCOME_OF[decision.action], rule, fields, nowMs);
  }

  /** Reports a request refused for want of an upstream slot (503). */
  notAdmitted(request: ObservedRequest, refusal: 'queue_full' | 'queue_timeout', nowMs: number): void {
    this.#refused(request, refusal === 'queue_full' ? 'queue_full' : 'queued_timeout', 'concurrency', { status: 503 }, nowMs);
  }

  /** Reports a finished upstream exchange. */
  forwarded(outcome: ForwardOutcome, seconds: number): void {
    this.#parts.metrics.observeUpstream(outcome, seconds);
  }

  #refused(request: ObservedRequest, outcome: RequestOutcome, rule: string, fields: Record<string, unknown>, nowMs: number): void {
    const { metrics, rates, offenders, refusals, logger } = this.#parts;
    metrics.countRequest(outcome, rule);
    this.#parts.sites?.count(siteName(request), outcome, rule);
    this.#parts.siteRates?.record(siteName(request), outcome, nowMs);
    rates.record(outcome, nowMs);
    refusals.recordRefusals(1, nowMs);
    if (offenders.record(request.client, rule, nowMs)) {
      logger.info({ ...describe(request), decision: outcome, rule, ...fields }, 'client refused (first refusal of this client in the window; the rest are counted in metrics)');
    }
  }
}

function siteName(request: ObservedRequest): string {
  return request.site === undefined ? DEFAULT_SITE_NAME : request.site === null ? '' : request.site.name;
}

function describe(request: ObservedRequest): Record<string, unknown> {
  // The target is client-chosen: cap it so a 64 KiB URL cannot bloat the log.
  const target = request.target.length > 512 ? `${request.target.slice(0, 512)}…` : request.target;
  const site = request.site === undefined || request.site === null ? {} : { site: request.site.name };
  return { client: request.client.ip, prefix: request.client.prefix, method: request.method, target, ...site };
}
