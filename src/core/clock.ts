/**
 * Time as the engine sees it. Everything that decides (buckets, strikes, bans)
 * reads time from an injected Clock so that tests and replays of recorded
 * traffic can drive it, and so that a wall-clock jump (NTP, DST) never refills a bucket.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale; only differences are meaningful. */
  nowMs(): number;
}

/**
 * Wall-clock time, for what outlives the process or is read by people: the
 * state file, alerts, access-log lines, metrics timestamps. Never used to
 * measure a duration (it jumps with NTP).
 */
export interface WallClock {
  /** Milliseconds since the Unix epoch. */
  epochMs(): number;
}

/** The system's wall clock (Date.now()). */
export const systemWallClock: WallClock = { epochMs: () => Date.now() };

/** The process's monotonic clock (performance.now()). */
export const systemClock: Clock = {
  nowMs: () => performance.now(),
};

/**
 * A clock that moves only when told to. Shipped (not test-only) so that a
 * replay of recorded traffic can drive the engine on its own timestamps.
 */
export class ManualClock implements Clock {
  #nowMs: number;

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  /** Moves time forward by `ms`; refuses to go backwards, as a monotonic clock never does. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualClock cannot move backwards (advance(${ms}))`);
    this.#nowMs += ms;
  }

  /** Jumps to an absolute time, which must not be earlier than now. */
  set(ms: number): void {
    this.advance(ms - this.#nowMs);
  }
}
