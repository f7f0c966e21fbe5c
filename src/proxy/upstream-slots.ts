import { systemClock, type Clock } from '../core/clock.js';
import { systemTimers, type TimerHandle, type Timers } from '../core/timers.js';

/**
 * Admission to the upstream. Apache (prefork or event, with PHP) holds a
 * worker and its memory for every request in flight; past `MaxRequestWorkers`
 * it queues in the kernel, and a flood of slow requests drives it out of
 * memory long before the rate limits notice. So the proxy caps requests in
 * flight, in total and per client, and makes the rest wait in a short,
 * bounded queue, refusing at once when that is full.
 */

export interface UpstreamSlotsOptions {
  /** Upstream requests in flight in total. Match it to what Apache can hold (`MaxRequestWorkers`, less headroom). Whole number ≥ 1. */
  upstreamMax: number;
  /** Upstream requests in flight for one client key. Whole number ≥ 1. */
  perClientMax: number;
  /** Waiters in total; beyond this, `wait` refuses at once with 'queue_full'. Whole number ≥ 0 (0: no queue). */
  queueMax: number;
  /**
   * Waiters for one client key; beyond this, `wait` refuses at once with
   * 'queue_full', so a flooding client cannot fill the queue and starve
   * everyone. Whole number ≥ 0 (0: a client at its cap is refused at once).
   */
  perClientQueueMax: number;
  /** A waiter not granted a slot within this many milliseconds is refused with 'queue_timeout'. > 0. */
  queueTimeoutMs: number;
}

/** Why no slot was given. A value, not an exception: refusing is normal operation under load. */
export type SlotRefusal = 'queue_full' | 'queue_timeout' | 'cancelled';

/** Permission for one upstream request. Release it when the upstream exchange is over. */
export interface Slot {
  /** Gives the slot back and lets the next waiter in. Idempotent: a second call is a no-op. */
  release(): void;
}

/** Per-client counters. Present in the map only while the client holds or awaits a slot. */
interface ClientUsage {
  readonly key: string;
  inFlight: number;
  queued: number;
}

/** A queued request: a node of the FIFO's doubly linked list, so removal from anywhere is O(1). */
interface Waiter {
  readonly usage: ClientUsage;
  readonly enqueuedAtMs: number;
  deadlineMs: number;
  readonly resolve: (outcome: Slot | SlotRefusal) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: (() => void) | undefined;
  prev: Waiter | null;
  next: Waiter | null;
}

/**
 * Caps upstream requests in flight, globally and per client, with a bounded
 * FIFO wait queue.
 *
 * Fairness: when a slot frees up it goes to the oldest waiter whose client is
 * under `perClientMax`; a client at its cap does not hold up the clients queued
 * behind it. Between operations no queued waiter could be granted (every
 * release and reconfigure grants all it can), so `tryAcquire` giving a free
 * slot to a newcomer never jumps the queue.
 *
 * Memory: one map entry per client with something in flight or queued, so the
 * map holds at most upstreamMax + queueMax entries (more only transiently after
 * a reconfigure lowers the limits, since holders and waiters are kept); one
 * list node per waiter; one timer for the whole queue.
 */
export class UpstreamSlots {
  #options: Readonly<UpstreamSlotsOptions>;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #clients = new Map<string, ClientUsage>();
  #inFlight = 0;
  #queued = 0;
  #head: Waiter | null = null;
  #tail: Waiter | null = null;
  /**
   * The one queue timer: armed iff the queue is not empty, for a time no later
   * than the head's deadline. Since every waiter gets the same timeout, the
   * queue is also in deadline order, so the head always expires first.
   */
  #timer: TimerHandle = null;

  /**
   * Throws a RangeError naming the option if a limit is not a whole number in
   * range. Time comes from `clock` and `timers` (the system's by default).
   */
  constructor(options: UpstreamSlotsOptions, clock: Clock = systemClock, timers: Timers = systemTimers) {
    this.#options = validateOptions(options);
    this.#clock = clock;
    this.#timers = timers;
  }

  /** Upstream requests in flight now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Requests waiting for a slot now. */
  get queued(): number {
    return this.#queued;
  }

  /** Clients holding or awaiting a slot (the size of the per-client table). */
  get trackedClients(): number {
    return this.#clients.size;
  }

  /** What one client holds and awaits now; zeros for a client unknown here. */
  usageOf(clientKey: string): { inFlight: number; queued: number } {
    const usage = this.#clients.get(clientKey);
    return { inFlight: usage?.inFlight ?? 0, queued: usage?.queued ?? 0 };
  }

  /**
   * Synchronous fast path: a Slot if one is free now for this client (global
   * and per-client caps both allow it), else null — then call `wait`.
   */
  tryAcquire(clientKey: string): Slot | null {
    if (this.#inFlight >= this.#options.upstreamMax) return null;
    const usage = this.#clients.get(clientKey);
    if (usage !== undefined && usage.inFlight >= this.#options.perClientMax) return null;
    return this.#grant(usage ?? this.#track(clientKey));
  }

  /**
   * Waits in the queue for a slot. Resolves to a Slot, or to a SlotRefusal:
   * 'queue_full' at once when the queue (or this client's share of it) is
   * full, 'queue_timeout' after `queueTimeoutMs`, 'cancelled' when `signal`
   * aborts (the client went away) — never rejects.
   *
   * Grants at once if a slot is free, so calling `wait` without `tryAcquire`
   * first is correct, only slower. If `signal` aborts after the grant, the
   * promise still resolves to the Slot: the caller must release it.
   */
  wait(clientKey: string, signal?: AbortSignal): Promise<Slot | SlotRefusal> {
    if (signal?.aborted === true) return Promise.resolve('cancelled');
    const slot = this.tryAcquire(clientKey);
    if (slot !== null) return Promise.resolve(slot);
    if (this.#queued >= this.#options.queueMax) return Promise.resolve('queue_full');
    const existing = this.#clients.get(clientKey);
    if ((existing?.queued ?? 0) >= this.#options.perClientQueueMax) return Promise.resolve('queue_full');
    const usage = existing ?? this.#track(clientKey);

    return new Promise((resolve) => {
      const now = this.#clock.nowMs();
      const waiter: Waiter = {
        usage,
        enqueuedAtMs: now,
        deadlineMs: now + this.#options.queueTimeoutMs,
        resolve,
        signal,
        onAbort: signal === undefined ? undefined : () => this.#refuse(waiter, 'cancelled'),
        prev: this.#tail,
        next: null,
      };
      if (this.#tail === null) this.#head = waiter;
      else this.#tail.next = waiter;
      this.#tail = waiter;
      usage.queued += 1;
      this.#queued += 1;
      if (waiter.onAbort !== undefined) signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#armTimer();
    });
  }

  /**
   * Updates limits in place (policy reload). Holders and waiters are kept:
   * lower caps take effect as slots are released, and a queue longer than the
   * new `queueMax` drains rather than being cut. Raised caps grant waiters at
   * once. A changed `queueTimeoutMs` applies to current waiters too, counted
   * from when each was queued.
   */
  reconfigure(options: UpstreamSlotsOptions): void {
    const previous = this.#options;
    this.#options = validateOptions(options);
    if (this.#options.queueTimeoutMs !== previous.queueTimeoutMs) {
      // Same timeout for everyone keeps the queue in deadline order.
      for (let w = this.#head; w !== null; w = w.next) w.deadlineMs = w.enqueuedAtMs + this.#options.queueTimeoutMs;
      this.#disarmTimer();
    }
    // Grant before expiring: a waiter that can go now should not be timed out.
    this.#pump();
    this.#expireDue();
    this.#armTimer();
  }

  #track(clientKey: string): ClientUsage {
    const usage: ClientUsage = { key: clientKey, inFlight: 0, queued: 0 };
    this.#clients.set(clientKey, usage);
    return usage;
  }

  #untrackIfIdle(usage: ClientUsage): void {
    if (usage.inFlight === 0 && usage.queued === 0) this.#clients.delete(usage.key);
  }

  #grant(usage: ClientUsage): Slot {
    this.#inFlight += 1;
    usage.inFlight += 1;
    let released = false;
    // The slot keeps its usage object rather than looking the key up again:
    // the entry cannot be deleted while this slot is held (inFlight ≥ 1).
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#inFlight -= 1;
        usage.inFlight -= 1;
        this.#untrackIfIdle(usage);
        this.#pump();
      },
    };
  }

  /** Grants free slots to the oldest waiters whose clients are under their cap. */
  #pump(): void {
    while (this.#inFlight < this.#options.upstreamMax) {
      // Bounded by the queue length (≤ queueMax).
      let waiter = this.#head;
      while (waiter !== null && waiter.usage.inFlight >= this.#options.perClientMax) waiter = waiter.next;
      if (waiter === null) return;
      this.#unlink(waiter);
      waiter.resolve(this.#grant(waiter.usage));
    }
  }

  #refuse(waiter: Waiter, refusal: SlotRefusal): void {
    this.#unlink(waiter);
    this.#untrackIfIdle(waiter.usage);
    waiter.resolve(refusal);
  }

  /** Takes a waiter out of the queue and its counters; the caller settles it. */
  #unlink(waiter: Waiter): void {
    if (waiter.prev === null) this.#head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === null) this.#tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = null;
    waiter.next = null;
    waiter.usage.queued -= 1;
    this.#queued -= 1;
    if (waiter.onAbort !== undefined) waiter.signal?.removeEventListener('abort', waiter.onAbort);
    // No timer without waiters, so an idle proxy can exit cleanly. When the
    // head leaves and others remain, the timer is left as is: it fires no
    // later than the new head's deadline and re-arms, which is cheaper than
    // re-arming on every grant.
    if (this.#head === null) this.#disarmTimer();
  }

  #expireDue(): void {
    const now = this.#clock.nowMs();
    while (this.#head !== null && this.#head.deadlineMs <= now) this.#refuse(this.#head, 'queue_timeout');
  }

  #armTimer(): void {
    if (this.#timer !== null || this.#head === null) return;
    const delayMs = Math.max(0, Math.ceil(this.#head.deadlineMs - this.#clock.nowMs()));
    this.#timer = this.#timers.setTimeout(this.#onTimer, delayMs);
  }

  #disarmTimer(): void {
    if (this.#timer === null) return;
    this.#timers.clearTimeout(this.#timer);
    this.#timer = null;
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#expireDue();
    this.#armTimer();
  };
}

function validateOptions(options: UpstreamSlotsOptions): Readonly<UpstreamSlotsOptions> {
  const wholeAtLeast = (name: keyof UpstreamSlotsOptions, min: number): number => {
    const value = options[name];
    if (!Number.isInteger(value) || value < min) {
      throw new RangeError(`UpstreamSlots: ${name} must be a whole number ≥ ${min}, got ${String(value)}`);
    }
    return value;
  };
  const { queueTimeoutMs } = options;
  if (!Number.isFinite(queueTimeoutMs) || queueTimeoutMs <= 0) {
    throw new RangeError(`UpstreamSlots: queueTimeoutMs must be a positive number of milliseconds, got ${String(queueTimeoutMs)}`);
  }
  return Object.freeze({
    upstreamMax: wholeAtLeast('upstreamMax', 1),
    perClientMax: wholeAtLeast('perClientMax', 1),
    queueMax: wholeAtLeast('queueMax', 0),
    perClientQueueMax: wholeAtLeast('perClientQueueMax', 0),
    queueTimeoutMs,
  });
}
