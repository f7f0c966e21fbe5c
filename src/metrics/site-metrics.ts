import { Counter, type Registry } from 'prom-client';
import type { RequestOutcome } from './proxy-metrics.js';

/**
 * Requests per site. A family of its own, so portcullis_requests_total keeps
 * its labels (existing dashboards and alerting rules stay valid); `site` is a
 * closed set from the policy: its site names, `_default_` for the top-level
 * policy, and the empty name for requests refused for a Host no site can
 * be chosen by. Children are cached, so counting is one map lookup and an
 * addition.
 */
export class SiteMetrics {
  readonly #requests: Counter<'site' | 'decision' | 'rule'>;
  readonly #children = new Map<string, Counter.Internal>();

  constructor(registry: Registry) {
    this.#requests = new Counter({
      name: 'portcullis_site_requests_total',
      help: 'Requests by site (a name from the policy; _default_: the top-level policy; empty: no usable Host), decision and the rule that made it.',
      labelNames: ['site', 'decision', 'rule'],
      registers: [registry],
    });
  }

  /** Makes each site of the policy show, at 0, before its first request (at start and at each reload). */
  declare(sites: readonly string[]): void {
    for (const site of sites) this.count(site, 'allowed', '', 0);
  }

  /** Counts one request's fate on `site`; `rule` is empty for allowed requests. */
  count(site: string, decision: RequestOutcome, rule: string, by = 1): void {
    const key = `${site}\u0000${decision}\u0000${rule}`;
    let child = this.#children.get(key);
    if (child === undefined) {
      child = this.#requests.labels({ site, decision, rule });
      this.#children.set(key, child);
    }
    child.inc(by);
  }
}
