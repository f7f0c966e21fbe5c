/** What the detector reports when a poll crosses an edge. */
export type AttackEvent =
  | {
      readonly kind: 'attack_started';
      /** Refused requests per second, averaged over the window, when the attack was noticed. */
      readonly ratePerSec: number;
      readonly threshold: number;
    }
  | {
      readonly kind: 'attack_ended';
      /** The averaged rate at the poll that ended the attack (below the threshold). */
      readonly ratePerSec: number;
      readonly threshold: number;
      /** Highest averaged rate seen at any poll during the attack. */
      readonly peakRatePerSec: number;
      /** From the start until the rate fell below the threshold for good (the quiet minute is not counted). */
      readonly durationMs: number;
    };

/** Seconds the refused rate is averaged over: long enough that one burst is not an attack. */
export const ATTACK_WINDOW_SECONDS = 10;

/**
 * Ring slots: the window's complete seconds plus the one in progress. Only
 * complete seconds are averaged: counting the current, partial second as a
 * full tenth would read a steady flood up to 10% low depending on when in
 * the second the poll runs. It costs at most one second of detection delay.
 */
const SLOTS = ATTACK_WINDOW_SECONDS + 1;

/**
 * How long the rate must stay below the threshold before an attack is over.
 * A judgement call: floods come in waves, and one "ended" per lull would be
 * noise; a minute is long enough to ride out a lull, short enough to tell
 * the on-call person soon that it is over.
 */
export const ATTACK_QUIET_MS = 60_000;

/**
 * Decides when refusals add up to an attack, and when it is over. Pure: time
 * comes in as `nowMs` (monotonic milliseconds), so tests and replays of recorded traffic drive
 * it. Memory is fixed: one counter per second of the window, in a ring.
 *
 * `record` is cheap (an addition, plus zeroing the seconds skipped since the
 * last call), so the proxy can call it for every refused request. `poll` is
 * meant to be called about once a second; the quiet minute and the peak are
 * measured at polls.
 */
export class AttackDetector {
  readonly #counts = new Float64Array(SLOTS);
  /** The second (`floor(nowMs / 1000)`) the newest slot counts; -Infinity before the first call. */
  #headSecond = Number.NEGATIVE_INFINITY;
  #sum = 0;
  #thresholdPerSec: number;
  #attack: { startedMs: number; peakRatePerSec: number; belowSinceMs: number | null } | null = null;

  /** @param thresholdPerSec Refused requests per second (averaged over 10 s) that make an attack; must be positive. */
  constructor(thresholdPerSec: number) {
    this.#thresholdPerSec = checkThreshold(thresholdPerSec);
  }

  /** The threshold in force, refused requests per second. */
  get thresholdPerSec(): number {
    return this.#thresholdPerSec;
  }

  /** True between an `attack_started` and its `attack_ended`. */
  get underAttack(): boolean {
    return this.#attack !== null;
  }

  /**
   * Changes the threshold (policy reload). An attack in progress is kept: it
   * ends by the usual rule, a quiet minute below the new threshold.
   */
  setThreshold(thresholdPerSec: number): void {
    this.#thresholdPerSec = checkThreshold(thresholdPerSec);
  }

  /** Adds `count` refused requests at `nowMs`. A time earlier than the newest seen counts in the newest second. */
  record(count: number, nowMs: number): void {
    // NaN or a negative count would poison the running sum for good.
    if (!(count > 0)) return;
    this.#advance(nowMs);
    const slot = slotOf(this.#headSecond);
    this.#counts[slot] = (this.#counts[slot] as number) + count;
    this.#sum += count;
  }

  /** Refused requests per second averaged over the last 10 complete seconds before `nowMs`'s. */
  ratePerSec(nowMs: number): number {
    this.#advance(nowMs);
    return (this.#sum - (this.#counts[slotOf(this.#headSecond)] as number)) / ATTACK_WINDOW_SECONDS;
  }

  /**
   * Reports an edge, or null: `attack_started` when the averaged rate reaches
   * the threshold, `attack_ended` once it has stayed below it for a minute.
   */
  poll(nowMs: number): AttackEvent | null {
    const ratePerSec = this.ratePerSec(nowMs);
    const threshold = this.#thresholdPerSec;
    const attack = this.#attack;
    if (attack === null) {
      if (ratePerSec < threshold) return null;
      this.#attack = { startedMs: nowMs, peakRatePerSec: ratePerSec, belowSinceMs: null };
      return { kind: 'attack_started', ratePerSec, threshold };
    }
    attack.peakRatePerSec = Math.max(attack.peakRatePerSec, ratePerSec);
    if (ratePerSec >= threshold) {
      attack.belowSinceMs = null;
      return null;
    }
    if (attack.belowSinceMs === null) {
      attack.belowSinceMs = nowMs;
      return null;
    }
    if (nowMs - attack.belowSinceMs < ATTACK_QUIET_MS) return null;
    this.#attack = null;
    return { kind: 'attack_ended', ratePerSec, threshold, peakRatePerSec: attack.peakRatePerSec, durationMs: attack.belowSinceMs - attack.startedMs };
  }

  /** Moves the ring to `nowMs`'s second, zeroing the seconds that passed without a call. */
  #advance(nowMs: number): void {
    const second = Math.floor(nowMs / 1000);
    if (second <= this.#headSecond) return;
    if (second - this.#headSecond >= SLOTS) {
      this.#counts.fill(0);
      this.#sum = 0;
    } else {
      for (let s = this.#headSecond + 1; s <= second; s++) {
        const slot = slotOf(s);
        this.#sum -= this.#counts[slot] as number;
        this.#counts[slot] = 0;
      }
    }
    this.#headSecond = second;
  }
}

/** The ring slot of a second; non-negative for negative seconds too (a clock may start below zero). */
function slotOf(second: number): number {
  return ((second % SLOTS) + SLOTS) % SLOTS;
}

function checkThreshold(thresholdPerSec: number): number {
  if (!(Number.isFinite(thresholdPerSec) && thresholdPerSec > 0)) {
    throw new RangeError(`attack threshold must be a positive number of refused requests per second, got ${thresholdPerSec}`);
  }
  return thresholdPerSec;
}
