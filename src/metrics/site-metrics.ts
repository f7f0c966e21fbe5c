import { Counter, type Registry } from 'prom-client';
import type { RequestOutcome } from './proxy-metrics.js';

/**
 * Requests per site. A family of its own, so portcullis_requests_total keeps
 * its labels (existing dashboards and alerting rules stay valid); `site` is a
 * closed set from the policy: its site names, `_default_` for the top-level
 * policy, and the empty name for requests refused for a Host no site can
 * be chosen by. Counting is one map lookup and an addition; the sums reach
 * prom-client at each scrape.
 */
export class SiteMetrics {
  readonly #requests: Counter<'site' | 'decision' | 'rule'>;
  /** Label key → its labels and the requests not yet added (handed to prom-client at each scrape: no label hashing per request). */
  readonly #pending = new Map<string, { readonly labels: { site: string; decision: RequestOutcome; rule: string }; count: number }>();

  constructor(registry: Registry) {
    this.#requests = new Counter({
      name: 'portcullis_site_requests_total',
      help: 'Requests by site (a name from the policy; _default_: the top-level policy; empty: no usable Host), decision and the rule that made it.',
      labelNames: ['site', 'decision', 'rule'],
      registers: [registry],
      collect: () => {
        for (const entry of this.#pending.values()) {
          this.#requests.inc(entry.labels, entry.count);
          entry.count = 0;
        }
      },
    });
  }

  /** Makes each site of the policy show, at 0, before its first request (at start and at each reload). */
  declare(sites: readonly string[]): void {
    for (const site of sites) this.count(site, 'allowed', '', 0);
  }

  /** Counts one request's fate on `site`; `rule` is empty for allowed requests. */
  count(site: string, decision: RequestOutcome, rule: string, by = 1): void {
    const key = `${site}\u0000${decision}\u0000${rule}`;
    let entry = this.#pending.get(key);
    if (entry === undefined) {
      entry = { labels: { site, decision, rule }, count: 0 };
      this.#pending.set(key, entry);
      // The series shows from its first count (at 0 for `declare`), not only after a scrape.
      this.#requests.inc(entry.labels, 0);
    }
    entry.count += by;
  }
}
