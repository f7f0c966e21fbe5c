import type { RequestOutcome } from './proxy-metrics.js';

/** Every decision, in the order `status` shows them. */
export const REQUEST_OUTCOMES: readonly RequestOutcome[] = ['allowed', 'limited', 'blocked', 'banned', 'rejected', 'queue_full', 'queued_timeout'];

/** Seconds of history kept; `portcullis status` shows rates over a shorter span of it. */
const SPAN_S = 60;

/**
 * Requests per second by decision over the last minute, for `portcullis
 * status` (Prometheus has the long view). A ring of per-second counts: fixed
 * memory, one increment per request, driven by the caller's `nowMs`.
 */
export class DecisionRates {
  readonly #counts = new Float64Array(SPAN_S * REQUEST_OUTCOMES.length);
  readonly #index = new Map(REQUEST_OUTCOMES.map((outcome, i) => [outcome, i]));
  /** The second (nowMs / 1000, floored) each ring slot holds. */
  readonly #slotSecond = new Float64Array(SPAN_S).fill(-1);

  /** Counts one request decided at `nowMs`. */
  record(outcome: RequestOutcome, nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    const slot = second % SPAN_S;
    if (this.#slotSecond[slot] !== second) {
      this.#counts.fill(0, slot * REQUEST_OUTCOMES.length, (slot + 1) * REQUEST_OUTCOMES.length);
      this.#slotSecond[slot] = second;
    }
    this.#counts[slot * REQUEST_OUTCOMES.length + (this.#index.get(outcome) as number)]! += 1;
  }

  /** Average requests per second of each decision over the `windowS` complete seconds before `nowMs`. */
  perSecond(windowS: number, nowMs: number): Record<RequestOutcome, number> {
    const span = Math.min(Math.max(1, Math.floor(windowS)), SPAN_S - 1);
    const current = Math.floor(nowMs / 1000);
    const totals = new Array<number>(REQUEST_OUTCOMES.length).fill(0);
    for (let second = current - span; second < current; second++) {
      const slot = ((second % SPAN_S) + SPAN_S) % SPAN_S;
      if (this.#slotSecond[slot] !== second) continue;
      for (let i = 0; i < REQUEST_OUTCOMES.length; i++) totals[i]! += this.#counts[slot * REQUEST_OUTCOMES.length + i]!;
    }
    return Object.fromEntries(REQUEST_OUTCOMES.map((outcome, i) => [outcome, totals[i]! / span])) as Record<RequestOutcome, number>;
  }
}
