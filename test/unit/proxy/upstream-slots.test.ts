import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ManualTimers } from '../../../src/core/timers.js';
import { UpstreamSlots, type Slot, type SlotRefusal, type UpstreamSlotsOptions } from '../../../src/proxy/upstream-slots.js';

const BASE: UpstreamSlotsOptions = {
  upstreamMax: 2,
  perClientMax: 2,
  queueMax: 10,
  perClientQueueMax: 10,
  queueTimeoutMs: 1000,
};

function makeSlots(overrides: Partial<UpstreamSlotsOptions> = {}): UpstreamSlots {
  return new UpstreamSlots({ ...BASE, ...overrides });
}

/** A wait() whose outcome can be inspected synchronously after `settle()`. */
interface Pending {
  outcome: Slot | SlotRefusal | undefined;
  readonly name: string;
}

/** Grants and refusals in the order they arrived. */
let log: string[];

function waitFor(slots: UpstreamSlots, client: string, name: string, signal?: AbortSignal): Pending {
  const pending: Pending = { outcome: undefined, name };
  void slots.wait(client, signal).then((outcome) => {
    pending.outcome = outcome;
    log.push(`${name}:${typeof outcome === 'string' ? outcome : 'slot'}`);
  });
  return pending;
}

function slotOf(pending: Pending): Slot {
  const { outcome } = pending;
  if (outcome === undefined || typeof outcome === 'string') throw new Error(`${pending.name} holds no slot (${String(outcome)})`);
  return outcome;
}

/** Lets resolved promises run their callbacks; no time passes. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function acquire(slots: UpstreamSlots, client: string): Slot {
  const slot = slots.tryAcquire(client);
  if (slot === null) throw new Error(`test setup: no free slot for ${client}`);
  return slot;
}

beforeEach(() => {
  vi.useFakeTimers();
  log = [];
});

afterEach(() => {
  vi.useRealTimers();
});

describe('UpstreamSlots: caps', () => {
  it('caps requests in flight globally', () => {
    const slots = makeSlots({ upstreamMax: 2, perClientMax: 5 });
    expect(slots.tryAcquire('a')).not.toBeNull();
    expect(slots.tryAcquire('b')).not.toBeNull();
    expect(slots.tryAcquire('c')).toBeNull();
    expect(slots.inFlight).toBe(2);
  });

  it('caps requests in flight per client, leaving room for others', () => {
    const slots = makeSlots({ upstreamMax: 5, perClientMax: 1 });
    expect(slots.tryAcquire('a')).not.toBeNull();
    expect(slots.tryAcquire('a')).toBeNull();
    expect(slots.tryAcquire('b')).not.toBeNull();
    expect(slots.usageOf('a')).toEqual({ inFlight: 1, queued: 0 });
    expect(slots.inFlight).toBe(2);
  });

  it('grants at once from wait() when a slot is free', async () => {
    const slots = makeSlots();
    const first = waitFor(slots, 'a', 'first');
    await settle();
    expect(log).toEqual(['first:slot']);
    expect(slots.queued).toBe(0);
    slotOf(first).release();
    expect(slots.inFlight).toBe(0);
  });
});

describe('UpstreamSlots: queue', () => {
  it('grants waiters in FIFO order as slots are released', async () => {
    const slots = makeSlots({ upstreamMax: 1 });
    const held = acquire(slots, 'x');
    const w1 = waitFor(slots, 'a', 'w1');
    const w2 = waitFor(slots, 'b', 'w2');
    const w3 = waitFor(slots, 'c', 'w3');
    await settle();
    expect(log).toEqual([]);
    expect(slots.queued).toBe(3);

    held.release();
    await settle();
    expect(log).toEqual(['w1:slot']);
    slotOf(w1).release();
    await settle();
    expect(log).toEqual(['w1:slot', 'w2:slot']);
    slotOf(w2).release();
    await settle();
    expect(log).toEqual(['w1:slot', 'w2:slot', 'w3:slot']);
    slotOf(w3).release();
    expect(slots.inFlight).toBe(0);
    expect(slots.queued).toBe(0);
  });

  it('does not let a client at its cap block the clients queued behind it', async () => {
    const slots = makeSlots({ upstreamMax: 2, perClientMax: 1 });
    const a1 = acquire(slots, 'a');
    const b1 = acquire(slots, 'b');
    const a2 = waitFor(slots, 'a', 'a2'); // first in line, but a is at its cap
    const c1 = waitFor(slots, 'c', 'c1');
    await settle();

    b1.release();
    await settle();
    expect(log).toEqual(['c1:slot']);
    expect(a2.outcome).toBeUndefined();
    expect(slots.usageOf('a')).toEqual({ inFlight: 1, queued: 1 });

    a1.release();
    await settle();
    expect(log).toEqual(['c1:slot', 'a2:slot']);
    slotOf(a2).release();
    slotOf(c1).release();
    expect(slots.trackedClients).toBe(0);
  });

  it('does not let tryAcquire jump a waiter that could be granted', async () => {
    const slots = makeSlots({ upstreamMax: 1, perClientMax: 1 });
    const held = acquire(slots, 'a');
    waitFor(slots, 'b', 'b1');
    held.release();
    // The freed slot went to b1 during release(), before anyone else could ask.
    expect(slots.tryAcquire('c')).toBeNull();
    await settle();
    expect(log).toEqual(['b1:slot']);
  });

  it('refuses at once when the queue is full', async () => {
    const slots = makeSlots({ upstreamMax: 1, queueMax: 2 });
    acquire(slots, 'x');
    waitFor(slots, 'a', 'w1');
    waitFor(slots, 'b', 'w2');
    const w3 = waitFor(slots, 'c', 'w3');
    await settle();
    expect(w3.outcome).toBe('queue_full');
    expect(log).toEqual(['w3:queue_full']);
    expect(slots.queued).toBe(2);
    expect(slots.usageOf('c')).toEqual({ inFlight: 0, queued: 0 });
    expect(slots.trackedClients).toBe(3); // x, a, b: c left no entry behind
  });

  it("refuses at once when the client's share of the queue is full, while others still queue", async () => {
    const slots = makeSlots({ upstreamMax: 1, perClientMax: 1, queueMax: 10, perClientQueueMax: 2 });
    acquire(slots, 'x');
    waitFor(slots, 'flood', 'f1');
    waitFor(slots, 'flood', 'f2');
    const f3 = waitFor(slots, 'flood', 'f3');
    const other = waitFor(slots, 'quiet', 'q1');
    await settle();
    expect(f3.outcome).toBe('queue_full');
    expect(other.outcome).toBeUndefined();
    expect(slots.usageOf('flood')).toEqual({ inFlight: 0, queued: 2 });
    expect(slots.queued).toBe(3);
  });

  it('refuses with no queue at all when queueMax is 0', async () => {
    const slots = makeSlots({ upstreamMax: 1, queueMax: 0 });
    acquire(slots, 'x');
    const w = waitFor(slots, 'a', 'w');
    await settle();
    expect(w.outcome).toBe('queue_full');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('UpstreamSlots: timeouts', () => {
  it('refuses a waiter not granted within queueTimeoutMs', async () => {
    const slots = makeSlots({ upstreamMax: 1, queueTimeoutMs: 1000 });
    acquire(slots, 'x');
    const w = waitFor(slots, 'a', 'w');
    await vi.advanceTimersByTimeAsync(999);
    expect(w.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(w.outcome).toBe('queue_timeout');
    expect(slots.queued).toBe(0);
    expect(slots.usageOf('a')).toEqual({ inFlight: 0, queued: 0 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('expires waiters in order using one timer for the whole queue', async () => {
    const slots = makeSlots({ upstreamMax: 1, queueMax: 100, queueTimeoutMs: 1000 });
    acquire(slots, 'x');
    for (let i = 0; i < 50; i++) waitFor(slots, `c${i}`, `w${i}`);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(400);
    const late = waitFor(slots, 'late', 'late');
    expect(vi.getTimerCount()).toBe(1);

    await vi.advanceTimersByTimeAsync(600);
    expect(log).toHaveLength(50);
    expect(log.every((entry) => entry.endsWith(':queue_timeout'))).toBe(true);
    expect(late.outcome).toBeUndefined();
    expect(vi.getTimerCount()).toBe(1);

    await vi.advanceTimersByTimeAsync(399);
    expect(late.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(late.outcome).toBe('queue_timeout');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('still times out a later waiter after the head was granted early', async () => {
    const slots = makeSlots({ upstreamMax: 1, queueTimeoutMs: 1000 });
    const held = acquire(slots, 'x');
    const first = waitFor(slots, 'a', 'first');
    await vi.advanceTimersByTimeAsync(500);
    const second = waitFor(slots, 'b', 'second');
    await vi.advanceTimersByTimeAsync(100);
    held.release(); // t=600: first is granted; the timer still points at t=1000
    await settle();
    expect(slotOf(first)).toBeDefined();

    await vi.advanceTimersByTimeAsync(400); // t=1000
    expect(second.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(499); // t=1499
    expect(second.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1); // t=1500
    expect(second.outcome).toBe('queue_timeout');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('uses the injected clock and timers', async () => {
    const timers = new ManualTimers();
    const slots = new UpstreamSlots({ ...BASE, upstreamMax: 1, queueTimeoutMs: 250 }, timers, timers);
    acquire(slots, 'x');
    const w = waitFor(slots, 'a', 'w');
    expect(timers.pending).toBe(1);
    timers.advance(249);
    await settle();
    expect(w.outcome).toBeUndefined();
    timers.advance(1);
    await settle();
    expect(w.outcome).toBe('queue_timeout');
    expect(timers.pending).toBe(0);
  });
});

describe('UpstreamSlots: cancellation and release', () => {
  it('removes a waiter whose client goes away', async () => {
    const slots = makeSlots({ upstreamMax: 1 });
    const held = acquire(slots, 'x');
    const abort = new AbortController();
    const gone = waitFor(slots, 'a', 'gone', abort.signal);
    const stays = waitFor(slots, 'b', 'stays');
    await settle();
    abort.abort();
    await settle();
    expect(gone.outcome).toBe('cancelled');
    expect(slots.queued).toBe(1);
    expect(slots.usageOf('a')).toEqual({ inFlight: 0, queued: 0 });

    held.release();
    await settle();
    expect(log).toEqual(['gone:cancelled', 'stays:slot']);
    slotOf(stays).release();
    expect(slots.trackedClients).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses an already aborted signal without queueing or taking a free slot', async () => {
    const slots = makeSlots();
    const w = waitFor(slots, 'a', 'w', AbortSignal.abort());
    await settle();
    expect(w.outcome).toBe('cancelled');
    expect(slots.inFlight).toBe(0);
    expect(slots.trackedClients).toBe(0);
  });

  it('ignores an abort after the grant: the caller holds the slot and releases it', async () => {
    const slots = makeSlots({ upstreamMax: 1 });
    const held = acquire(slots, 'x');
    const abort = new AbortController();
    const w = waitFor(slots, 'a', 'w', abort.signal);
    const behind = waitFor(slots, 'b', 'behind');
    held.release();
    abort.abort();
    await settle();
    expect(log).toEqual(['w:slot']);
    expect(slots.inFlight).toBe(1);
    expect(slots.queued).toBe(1);
    expect(slots.usageOf('a')).toEqual({ inFlight: 1, queued: 0 });
    slotOf(w).release();
    await settle();
    expect(log).toEqual(['w:slot', 'behind:slot']);
    slotOf(behind).release();
    expect(slots.inFlight).toBe(0);
    expect(slots.trackedClients).toBe(0);
  });

  it('treats a second release as a no-op', async () => {
    const slots = makeSlots({ upstreamMax: 2, perClientMax: 2 });
    const a = acquire(slots, 'a');
    acquire(slots, 'b');
    waitFor(slots, 'c', 'c1');
    waitFor(slots, 'd', 'd1');
    a.release();
    a.release();
    await settle();
    expect(log).toEqual(['c1:slot']);
    expect(slots.inFlight).toBe(2);
    expect(slots.queued).toBe(1);
    expect(slots.usageOf('a')).toEqual({ inFlight: 0, queued: 0 });
  });

  it('returns every counter to zero and empties the client table', async () => {
    const slots = makeSlots({ upstreamMax: 3, perClientMax: 2, queueMax: 20, perClientQueueMax: 5, queueTimeoutMs: 1000 });
    const abort = new AbortController();
    const held: Slot[] = [];
    for (const client of ['a', 'a', 'b']) held.push(acquire(slots, client));
    const pending = [
      waitFor(slots, 'a', 'a3'),
      waitFor(slots, 'b', 'b2', abort.signal),
      waitFor(slots, 'c', 'c1'),
      waitFor(slots, 'c', 'c2'),
      waitFor(slots, 'd', 'd1'),
    ];
    abort.abort();
    for (const slot of held) slot.release();
    await settle();
    await vi.advanceTimersByTimeAsync(1000); // whoever is still queued times out
    for (const p of pending) if (p.outcome !== undefined && typeof p.outcome !== 'string') p.outcome.release();
    await settle();
    for (const p of pending) if (p.outcome !== undefined && typeof p.outcome !== 'string') p.outcome.release();
    await vi.advanceTimersByTimeAsync(1000);

    expect(pending.every((p) => p.outcome !== undefined)).toBe(true);
    expect(slots.inFlight).toBe(0);
    expect(slots.queued).toBe(0);
    expect(slots.trackedClients).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('UpstreamSlots: reconfigure', () => {
  it('grants waiters at once when limits are raised', async () => {
    const slots = makeSlots({ upstreamMax: 1, perClientMax: 1 });
    acquire(slots, 'a');
    waitFor(slots, 'a', 'a2');
    waitFor(slots, 'b', 'b1');
    slots.reconfigure({ ...BASE, upstreamMax: 3, perClientMax: 2 });
    await settle();
    expect(log).toEqual(['a2:slot', 'b1:slot']);
    expect(slots.inFlight).toBe(3);
    expect(slots.queued).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps holders when limits are lowered and grants again only below the new cap', async () => {
    const slots = makeSlots({ upstreamMax: 3, perClientMax: 3 });
    const held = [acquire(slots, 'a'), acquire(slots, 'b'), acquire(slots, 'c')];
    slots.reconfigure({ ...BASE, upstreamMax: 1, perClientMax: 3 });
    expect(slots.inFlight).toBe(3);
    waitFor(slots, 'd', 'd1');
    held[0]!.release();
    held[1]!.release();
    await settle();
    expect(log).toEqual([]); // 1 in flight: at the new cap
    held[2]!.release();
    await settle();
    expect(log).toEqual(['d1:slot']);
  });

  it('applies a shorter timeout to current waiters, counted from when they queued', async () => {
    const slots = makeSlots({ upstreamMax: 1, queueTimeoutMs: 10_000 });
    acquire(slots, 'x');
    const early = waitFor(slots, 'a', 'early');
    await vi.advanceTimersByTimeAsync(3000);
    const later = waitFor(slots, 'b', 'later');
    await vi.advanceTimersByTimeAsync(1000); // t=4000
    slots.reconfigure({ ...BASE, upstreamMax: 1, queueTimeoutMs: 2000 });
    await settle();
    expect(early.outcome).toBe('queue_timeout'); // queued at 0: overdue since 2000
    expect(later.outcome).toBeUndefined(); // queued at 3000: due at 5000
    await vi.advanceTimersByTimeAsync(999);
    expect(later.outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(later.outcome).toBe('queue_timeout');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses new waiters while the queue is longer than a lowered queueMax, keeping the ones it has', async () => {
    const slots = makeSlots({ upstreamMax: 1, queueMax: 3 });
    acquire(slots, 'x');
    waitFor(slots, 'a', 'a');
    waitFor(slots, 'b', 'b');
    slots.reconfigure({ ...BASE, upstreamMax: 1, queueMax: 1 });
    const c = waitFor(slots, 'c', 'c');
    await settle();
    expect(c.outcome).toBe('queue_full');
    expect(slots.queued).toBe(2);
  });
});

describe('UpstreamSlots: options', () => {
  it.each([
    ['upstreamMax 0', { upstreamMax: 0 }, /upstreamMax must be a whole number ≥ 1, got 0/],
    ['perClientMax 1.5', { perClientMax: 1.5 }, /perClientMax must be a whole number ≥ 1, got 1\.5/],
    ['queueMax -1', { queueMax: -1 }, /queueMax must be a whole number ≥ 0, got -1/],
    ['perClientQueueMax NaN', { perClientQueueMax: Number.NaN }, /perClientQueueMax must be a whole number ≥ 0, got NaN/],
    ['queueTimeoutMs 0', { queueTimeoutMs: 0 }, /queueTimeoutMs must be a positive number of milliseconds, got 0/],
    ['queueTimeoutMs Infinity', { queueTimeoutMs: Infinity }, /queueTimeoutMs .* got Infinity/],
  ])('refuses %s', (_name, override, message) => {
    expect(() => makeSlots(override)).toThrow(message);
    expect(() => makeSlots().reconfigure({ ...BASE, ...override })).toThrow(message);
  });

  it('keeps the old limits when a reconfigure is refused', () => {
    const slots = makeSlots({ upstreamMax: 1 });
    expect(() => slots.reconfigure({ ...BASE, upstreamMax: 0 })).toThrow(RangeError);
    acquire(slots, 'a');
    expect(slots.tryAcquire('b')).toBeNull();
  });
});
