import type { PolicyConfig, SiteConfig } from '../config/schema.js';
import type { CompiledSite } from '../policy/compiled-policy.js';
import type { UpstreamRoute } from '../proxy/listeners/listener-spec.js';
import { NestedSlots } from '../proxy/nested-slots.js';
import type { Admission, SiteDestination, SiteRouting } from '../proxy/site-routing.js';
import { UpstreamSlots, type UpstreamSlotsOptions } from '../proxy/upstream-slots.js';
import { slotOptions } from './component-options.js';

/** What the site upstreams are built from. */
export interface SiteUpstreamsParts {
  /** The default upstream's admission (`concurrency`), which sub-caps live inside. */
  readonly defaultSlots: UpstreamSlots;
  /** The forwarders of one upstream, made once per URL with a pool of `connections`. */
  routeTo(upstream: string, connections: number): UpstreamRoute;
}

/** A site's upstream, for readiness and status. */
export interface SiteUpstream {
  readonly site: string;
  readonly upstream: string;
  readonly slots: UpstreamSlots;
}

/**
 * The per-site upstreams of a policy: one UpstreamSlots per upstream a site
 * names (capped by that site's `concurrency`, each key left out taken from
 * the top-level one), one sub-cap per site with `concurrency` and no
 * upstream. Rebuilt at each reload: caps already running are reconfigured
 * (requests in flight keep their slots), new upstreams get their forwarders.
 */
export class SiteUpstreams implements SiteRouting {
  readonly #parts: SiteUpstreamsParts;
  /** Sites with a destination of their own; the rest go where their listener sends them. */
  #bySite = new Map<string, { readonly route: UpstreamRoute | null; readonly slots: Admission }>();
  readonly #slotsByUpstream = new Map<string, UpstreamSlots>();
  readonly #subCaps = new Map<string, UpstreamSlots>();
  #upstreams: SiteUpstream[] = [];
  /** The default destination per listener route, made once rather than per request. */
  readonly #defaults = new WeakMap<UpstreamRoute, SiteDestination>();

  constructor(parts: SiteUpstreamsParts, config: PolicyConfig) {
    this.#parts = parts;
    this.configure(config);
  }

  /** Applies a (reloaded) policy's sites. */
  configure(config: PolicyConfig): void {
    const bySite = new Map<string, { route: UpstreamRoute | null; slots: Admission }>();
    const upstreams: SiteUpstream[] = [];
    for (const site of config.sites) {
      if (site.upstream !== undefined) {
        // Sites naming one upstream share its cap, set by the first of them (the schema refuses a second concurrency).
        let slots = this.#slotsByUpstream.get(site.upstream);
        const options = siteSlotOptions(config, site);
        if (slots === undefined) {
          slots = new UpstreamSlots(options);
          this.#slotsByUpstream.set(site.upstream, slots);
        } else if (!upstreams.some((known) => known.upstream === site.upstream)) {
          slots.reconfigure(options);
        }
        upstreams.push({ site: site.name, upstream: site.upstream, slots });
        bySite.set(site.name, { route: this.#parts.routeTo(site.upstream, options.upstreamMax), slots });
      } else if (site.concurrency !== undefined) {
        let cap = this.#subCaps.get(site.name);
        const options = siteSlotOptions(config, site);
        if (cap === undefined) {
          cap = new UpstreamSlots(options);
          this.#subCaps.set(site.name, cap);
        } else {
          cap.reconfigure(options);
        }
        bySite.set(site.name, { route: null, slots: new NestedSlots(cap, this.#parts.defaultSlots) });
      }
    }
    this.#bySite = bySite;
    this.#upstreams = upstreams;
  }

  destinationOf(site: CompiledSite | null | undefined, listenerRoute: UpstreamRoute): SiteDestination {
    const own = site === null || site === undefined ? undefined : this.#bySite.get(site.name);
    if (own !== undefined && own.route !== null) return own as SiteDestination;
    if (own !== undefined) return { route: listenerRoute, slots: own.slots };
    let destination = this.#defaults.get(listenerRoute);
    if (destination === undefined) {
      destination = { route: listenerRoute, slots: this.#parts.defaultSlots };
      this.#defaults.set(listenerRoute, destination);
    }
    return destination;
  }

  /** The upstreams sites name, in policy order. */
  get upstreams(): readonly SiteUpstream[] {
    return this.#upstreams;
  }
}

/** A site's admission: its `concurrency` keys, the top-level value for each it leaves out. */
function siteSlotOptions(config: PolicyConfig, site: SiteConfig): UpstreamSlotsOptions {
  const base = slotOptions(config);
  const own = site.concurrency ?? {};
  return {
    upstreamMax: own.upstream_max ?? base.upstreamMax,
    perClientMax: own.per_client_max ?? base.perClientMax,
    queueMax: own.queue_max ?? base.queueMax,
    perClientQueueMax: own.per_client_queue_max ?? base.perClientQueueMax,
    queueTimeoutMs: own.queue_timeout ?? base.queueTimeoutMs,
  };
}
