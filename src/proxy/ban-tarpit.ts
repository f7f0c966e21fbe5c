import { systemTimers, type Timers } from '../core/timers.js';

/** What the tarpit holds: a response, or a raw socket for an upgrade request. Either says when the client is gone. */
export interface HeldConnection {
  readonly closed: boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/**
 * Holds the answer to a banned client for a while before sending it (HAProxy's
 * "tarpit"). A flooder waits for each answer before sending the next request,
 * so a held connection costs it seconds per request and costs the proxy a
 * timer instead of a parse-and-403 every few microseconds. Held connections are
 * capped: past `max`, answers go out at once, as with no tarpit at all.
 */
export class BanTarpit {
  #delayMs: number;
  #max: number;
  #held = 0;
  readonly #timers: Timers;

  constructor(delayMs: number, max: number, timers: Timers = systemTimers) {
    this.#delayMs = delayMs;
    this.#max = max;
    this.#timers = timers;
  }

  /** Applies reloaded settings; answers already held keep their timers. */
  configure(delayMs: number, max: number): void {
    this.#delayMs = delayMs;
    this.#max = max;
  }

  /** Connections whose answer is being held now. */
  get held(): number {
    return this.#held;
  }

  /**
   * Calls `answer` with the time it was held, after the delay, or at once when
   * the delay is 0, the cap is reached or `connection` is null (a pipelined
   * request queued behind the one being held: its answer waits behind that
   * one anyway, and the connection closes with it). Never if the client leaves first.
   */
  answer(connection: HeldConnection | null, answer: (heldMs: number) => void): void {
    if (this.#delayMs === 0 || this.#held >= this.#max || connection === null || connection.closed) {
      answer(0);
      return;
    }
    this.#held++;
    const delayMs = this.#delayMs;
    const release = () => {
      this.#held--;
      this.#timers.clearTimeout(timer);
      connection.off('close', release);
    };
    // Not kept alive: a held flooder must not keep a stopping process running.
    const timer = this.#timers.setTimeout(() => {
      release();
      answer(delayMs);
    }, delayMs);
    connection.once('close', release);
  }
}
