import { GenerationalCache } from '../core/generational-cache.js';
import type { HostPattern } from './host-pattern.js';
import { canonicalRequestHost } from './request-host.js';

/** One site's host patterns, in policy order. */
export interface SiteHosts<Site> {
  readonly site: Site;
  readonly patterns: readonly HostPattern[];
}

/**
 * Chooses the site of a request the way Apache chooses the name-based vhost:
 * the first site in policy order with a pattern matching the host, else the
 * default site. Patterns are indexed once: a lookup is one map probe for the
 * exact name and one per label for wildcards, however many sites there are.
 */
export class SiteSelector<Site> {
  /** Canonical exact name → index of the first site naming it. */
  readonly #exact = new Map<string, number>();
  /** Wildcard base (`example.org` of `*.example.org`) → index of the first site naming it. */
  readonly #wildcards = new Map<string, number>();
  readonly #sites: readonly Site[];
  readonly #fallback: Site;
  /**
   * Host value as sent → its site. A site serves the same few spellings all
   * day, and reading one (an IP literal goes through ipaddr.js) was ~3 % of
   * a forwarded request's CPU. Values are the client's, so the memo is
   * capped in entries and in characters held.
   */
  readonly #chosen = new GenerationalCache<string, Site | null>(HOST_MEMO_ENTRIES, { maxWeight: HOST_MEMO_CHARACTERS, weigh: (_site, value) => value.length });

  /** `fallback` serves every host no site names (the `default: true` site, or the top-level policy). */
  constructor(sites: readonly SiteHosts<Site>[], fallback: Site) {
    this.#sites = sites.map((entry) => entry.site);
    this.#fallback = fallback;
    sites.forEach((entry, index) => {
      for (const pattern of entry.patterns) {
        const table = pattern.kind === 'exact' ? this.#exact : this.#wildcards;
        if (!table.has(pattern.base)) table.set(pattern.base, index);
      }
    });
  }

  /**
   * The site for a request's host value (see hostApacheUses): undefined (no
   * Host, HTTP/1.0) gets the default site; null means the value is not a
   * usable host (Apache answers 400), so the request gets 400 before any rule.
   */
  select(value: string | undefined): Site | null {
    if (value === undefined) return this.#fallback;
    const known = this.#chosen.get(value);
    if (known !== undefined) return known;
    const site = this.#choose(value);
    this.#chosen.set(value, site);
    return site;
  }

  #choose(value: string): Site | null {
    const name = canonicalRequestHost(value);
    if (name === null) return null;
    if (this.#exact.size === 0 && this.#wildcards.size === 0) return this.#fallback;
    let best = this.#exact.get(name) ?? Infinity;
    // `*.example.org` matches every name below example.org, at any depth (Apache's `*` spans dots).
    for (let dot = name.indexOf('.'); dot >= 0 && this.#wildcards.size > 0; dot = name.indexOf('.', dot + 1)) {
      const index = this.#wildcards.get(name.slice(dot + 1));
      if (index !== undefined && index < best) best = index;
    }
    return best === Infinity ? this.#fallback : (this.#sites[best] as Site);
  }
}

const HOST_MEMO_ENTRIES = 4096;
const HOST_MEMO_CHARACTERS = 256 * 1024;
