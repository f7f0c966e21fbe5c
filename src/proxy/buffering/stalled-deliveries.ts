import type { Clock } from '../../core/clock.js';
import type { TimerHandle, Timers } from '../../core/timers.js';

/** A delivery that can be cut when its client stops reading. */
export interface Cuttable {
  /** Bytes handed to the client's connection and not yet taken by the kernel: falling means the client is reading. */
  pendingBytes(): number;
  cut(): void;
}

interface Stall {
  sinceMs: number;
  pendingBytes: number;
}

/** How often stalled deliveries are checked: a send timeout holds to within this. */
const SWEEP_MS = 1_000;

/**
 * The send timeout (`buffering.send_timeout`, nginx's `send_timeout`): a
 * client that takes no byte of its response for that long is cut, and its
 * buffer freed. A slow reader that takes some bytes now and then is not. Without it a client that never reads would keep its buffered
 * answer (up to the whole response, on disk) for as long as it keeps the
 * connection open, and fifty of them could spend `temp_total`.
 *
 * Progress is seen a write at a time (at most 64 KiB from a buffer), so in
 * effect a client slower than about one such chunk per timeout is cut.
 *
 * One sweep per second for all stalled deliveries (each looked at in O(1)),
 * armed only while there is one, instead of a timer each; the table holds
 * only deliveries waiting on their client now, so it is bounded by open
 * connections.
 */
export class StalledDeliveries {
  readonly #timers: Timers;
  readonly #clock: Clock;
  #timeoutMs: number;
  readonly #stalls = new Map<Cuttable, Stall>();
  #sweep: TimerHandle | null = null;

  constructor(timers: Timers, clock: Clock, timeoutMs: number) {
    this.#timers = timers;
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
  }

  /** Deliveries waiting on their client now. */
  get size(): number {
    return this.#stalls.size;
  }

  /** Applies a reloaded timeout, to deliveries stalled now too (counted from when they stalled). */
  setTimeout(timeoutMs: number): void {
    this.#timeoutMs = timeoutMs;
  }

  /** `delivery`'s client has stopped taking bytes; idempotent (the first call starts the clock). */
  stalled(delivery: Cuttable): void {
    if (this.#stalls.has(delivery)) return;
    this.#stalls.set(delivery, { sinceMs: this.#clock.nowMs(), pendingBytes: delivery.pendingBytes() });
    this.#sweep ??= this.#timers.setInterval(this.#check, SWEEP_MS);
  }

  /** `delivery`'s client took bytes again, or the delivery is over. */
  resumed(delivery: Cuttable): void {
    if (!this.#stalls.delete(delivery) || this.#stalls.size > 0 || this.#sweep === null) return;
    this.#timers.clearInterval(this.#sweep);
    this.#sweep = null;
  }

  readonly #check = (): void => {
    const nowMs = this.#clock.nowMs();
    for (const [delivery, stall] of this.#stalls) {
      const pendingBytes = delivery.pendingBytes();
      if (pendingBytes < stall.pendingBytes) {
        // The client took some: its clock starts again.
        stall.sinceMs = nowMs;
        stall.pendingBytes = pendingBytes;
        continue;
      }
      if (nowMs - stall.sinceMs < this.#timeoutMs) continue;
      this.resumed(delivery);
      delivery.cut();
    }
  };
}
