import type { ServerResponse } from 'node:http';

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

  constructor(delayMs: number, max: number) {
    this.#delayMs = delayMs;
    this.#max = max;
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

  /** Calls `answer` after the delay, or at once when the delay is 0 or the cap is reached; never if the client leaves first. */
  answer(res: ServerResponse, answer: () => void): void {
    if (this.#delayMs === 0 || this.#held >= this.#max || res.closed) {
      answer();
      return;
    }
    this.#held++;
    const release = () => {
      this.#held--;
      clearTimeout(timer);
      res.off('close', release);
    };
    // unref: a held flooder must not keep a stopping process alive.
    const timer = setTimeout(() => {
      release();
      answer();
    }, this.#delayMs).unref();
    res.once('close', release);
  }
}
