import { canPay, refilledTokens } from '../../limiter/token-bucket.js';

/**
 * How many frames of one kind an HTTP/2 session may send: `burst` at once,
 * refilled at `ratePerSec`. A token bucket (the pure math of
 * limiter/token-bucket.ts) rather than a fixed window, so a client cannot
 * send two bursts back to back across a window's edge.
 */
export class FrameBudget {
  readonly #burst: number;
  readonly #ratePerMs: number;
  #tokens: number;
  #stampMs: number;

  constructor(burst: number, ratePerSec: number, nowMs: number) {
    this.#burst = burst;
    this.#ratePerMs = ratePerSec / 1000;
    this.#tokens = burst;
    this.#stampMs = nowMs;
  }

  /** Spends one frame at `nowMs`; false when the budget is spent (the session is flooding). */
  take(nowMs: number): boolean {
    const tokens = refilledTokens(this.#tokens, this.#stampMs, nowMs, this.#ratePerMs, this.#burst);
    // A clock that steps back must not move the stamp back and refill twice.
    this.#stampMs = Math.max(this.#stampMs, nowMs);
    if (!canPay(tokens, 1)) {
      this.#tokens = tokens;
      return false;
    }
    this.#tokens = tokens - 1;
    return true;
  }
}
