import type { CompiledSite } from '../policy/compiled-policy.js';
import type { UpstreamRoute } from './listeners/listener-spec.js';
import type { Slot, SlotRefusal } from './upstream-slots.js';

/** What admission to one upstream looks like to the proxy: UpstreamSlots, or a site's sub-cap inside it. */
export interface Admission {
  /** A free slot for `clientKey` now, or null; never queues. */
  tryAcquire(clientKey: string): Slot | null;
  /** Queues for a slot; resolves with it, or with why none was given. */
  wait(clientKey: string, signal?: AbortSignal): Promise<Slot | SlotRefusal>;
}

/** Where a request of one site goes and how it is admitted there. */
export interface SiteDestination {
  readonly route: UpstreamRoute;
  readonly slots: Admission;
}

/**
 * The per-site upstreams of the policy (built by the composition root): a
 * site with its own `upstream` goes there under its own cap; one with only a
 * `concurrency` goes where the listener sends it under a sub-cap; the rest
 * go where the listener sends them under the default cap.
 */
export interface SiteRouting {
  /** The destination of a request of `site` that came in on a listener routed to `listenerRoute`. */
  destinationOf(site: CompiledSite | null | undefined, listenerRoute: UpstreamRoute): SiteDestination;
}
