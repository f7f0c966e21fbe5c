import type { Admission } from './site-routing.js';
import type { Slot, SlotRefusal } from './upstream-slots.js';

/**
 * A site's `concurrency` without an upstream of its own: a slot of the site's
 * cap and then one of the shared cap it lives in, so the site never holds
 * more than its share and all sites together never more than the upstream
 * takes. A request waits in the site's queue first, then in the shared one
 * (each with its queue_timeout); the site's slot it already holds is given
 * back if the shared one is refused.
 */
export class NestedSlots implements Admission {
  readonly #inner: Admission;
  readonly #outer: Admission;

  constructor(inner: Admission, outer: Admission) {
    this.#inner = inner;
    this.#outer = outer;
  }

  tryAcquire(clientKey: string): Slot | null {
    const inner = this.#inner.tryAcquire(clientKey);
    if (inner === null) return null;
    const outer = this.#outer.tryAcquire(clientKey);
    if (outer === null) {
      inner.release();
      return null;
    }
    return both(inner, outer);
  }

  async wait(clientKey: string, signal?: AbortSignal): Promise<Slot | SlotRefusal> {
    const inner = this.#inner.tryAcquire(clientKey) ?? (await this.#inner.wait(clientKey, signal));
    if (typeof inner === 'string') return inner;
    const outer = this.#outer.tryAcquire(clientKey) ?? (await this.#outer.wait(clientKey, signal));
    if (typeof outer === 'string') {
      inner.release();
      return outer;
    }
    return both(inner, outer);
  }
}

function both(inner: Slot, outer: Slot): Slot {
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      outer.release();
      inner.release();
    },
  };
}
