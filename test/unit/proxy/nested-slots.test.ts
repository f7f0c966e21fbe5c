import { describe, expect, it } from 'vitest';
import { ManualTimers } from '../../../src/core/timers.js';
import { NestedSlots } from '../../../src/proxy/nested-slots.js';
import { UpstreamSlots, type Slot, type SlotRefusal } from '../../../src/proxy/upstream-slots.js';

const options = (upstreamMax: number) => ({ upstreamMax, perClientMax: upstreamMax, queueMax: 4, perClientQueueMax: 4, queueTimeoutMs: 1_000 });

async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

describe('NestedSlots: a site cap inside the default upstream cap', () => {
  function setup() {
    const timers = new ManualTimers();
    const outer = new UpstreamSlots(options(3), timers, timers);
    const inner = new UpstreamSlots(options(1), timers, timers);
    return { timers, outer, inner, site: new NestedSlots(inner, outer) };
  }

  it('takes a slot of both, and gives both back', () => {
    const { outer, inner, site } = setup();
    const slot = site.tryAcquire('a') as Slot;
    expect([inner.inFlight, outer.inFlight]).toEqual([1, 1]);
    expect(site.tryAcquire('b')).toBeNull();
    expect(outer.tryAcquire('c')).not.toBeNull();
    slot.release();
    slot.release();
    expect([inner.inFlight, outer.inFlight]).toEqual([0, 1]);
  });

  it('gives nothing, and holds nothing, when the shared cap is full', () => {
    const { outer, inner, site } = setup();
    for (const client of ['x', 'y', 'z']) outer.tryAcquire(client);
    expect(site.tryAcquire('a')).toBeNull();
    expect(inner.inFlight).toBe(0);
  });

  it('waits for the site cap, then for the shared one; a refusal of the second gives the first back', async () => {
    const { timers, outer, inner, site } = setup();
    const first = site.tryAcquire('a') as Slot;
    let second: Slot | SlotRefusal | undefined;
    void site.wait('b').then((outcome) => (second = outcome));
    for (const client of ['x', 'y']) outer.tryAcquire(client);
    // c queues for the shared cap directly: the shared slot a frees goes to c.
    void outer.wait('c');
    first.release();
    await settle();
    // b has the site slot now and waits for the shared one, which x, y and c hold.
    expect(second).toBeUndefined();
    expect([inner.inFlight, outer.queued]).toEqual([1, 1]);
    timers.advance(1_000);
    await settle();
    expect(second).toBe('queue_timeout');
    expect(inner.inFlight).toBe(0);
  });
});
