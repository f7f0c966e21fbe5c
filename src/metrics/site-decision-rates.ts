import { DecisionRates } from './decision-rates.js';
import type { RequestOutcome } from './proxy-metrics.js';

/**
 * Requests per second by decision, per site, for `portcullis status`. One
 * ring per site of the policy (a closed set: a site is created on its first
 * request and a reload's new sites join as they are seen, up to MAX_SITES),
 * never one per Host a client sends.
 */
export class SiteDecisionRates {
  readonly #bySite = new Map<string, DecisionRates>();

  /** Counts one request of `site` decided at `nowMs`. */
  record(site: string, outcome: RequestOutcome, nowMs: number): void {
    let rates = this.#bySite.get(site);
    if (rates === undefined) {
      if (this.#bySite.size >= MAX_SITES) return;
      this.#bySite.set(site, (rates = new DecisionRates()));
    }
    rates.record(outcome, nowMs);
  }

  /** Each site's average rates over the `windowS` complete seconds before `nowMs`, by site name. */
  perSecond(windowS: number, nowMs: number): Record<string, Record<RequestOutcome, number>> {
    return Object.fromEntries([...this.#bySite].map(([site, rates]) => [site, rates.perSecond(windowS, nowMs)]));
  }
}

/** Sites tracked at most: names come from the policy, so this only guards against a bug. */
const MAX_SITES = 1_000;
