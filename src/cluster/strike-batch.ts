import type { TimerHandle, Timers } from '../core/timers.js';
import type { ClientKey } from '../identity/client-key.js';
import { STRIKE_BATCH_MAX, type StrikeEntry } from './cluster-messages.js';

/** How long strikes wait to be sent together: "at most ~100 ms late". */
const STRIKE_BATCH_MS = 100;

/** A StrikeEntry still being summed into. */
type PendingStrike = [...StrikeEntry];

/**
 * The strikes this node counted and has not yet told the others, one entry
 * per client (weights summed), sent when 100 ms have passed since the first
 * or when the batch holds STRIKE_BATCH_MAX clients, whichever comes first.
 */
export class StrikeBatch {
  readonly #timers: Timers;
  readonly #send: (strikes: StrikeEntry[]) => Promise<void>;
  readonly #pending = new Map<string, PendingStrike>();
  #flushTimer: TimerHandle = null;

  /** @param send publishes one batch; it must not throw (a failed publish is the caller's to swallow). */
  constructor(timers: Timers, send: (strikes: StrikeEntry[]) => Promise<void>) {
    this.#timers = timers;
    this.#send = send;
  }

  /** Adds `weight` strikes of `client`, refused by `rule` of `site`, to the batch. */
  add(client: ClientKey, weight: number, rule: string, site: string | undefined): void {
    const known = this.#pending.get(client.ip);
    if (known !== undefined) known[1] += weight;
    else {
      this.#pending.set(client.ip, [client.ip, weight, rule, site ?? null]);
      if (this.#pending.size >= STRIKE_BATCH_MAX) {
        // A full batch goes now and the next one starts: none is dropped.
        void this.flush();
        return;
      }
    }
    // One timer per batch, not per strike: an idle node sets none.
    this.#flushTimer ??= this.#timers.setTimeout(() => this.flush(), STRIKE_BATCH_MS);
  }

  /** Sends what is held now, if anything, and cancels the timer. */
  async flush(): Promise<void> {
    this.#timers.clearTimeout(this.#flushTimer);
    this.#flushTimer = null;
    if (this.#pending.size === 0) return;
    const strikes = [...this.#pending.values()];
    this.#pending.clear();
    await this.#send(strikes);
  }
}
