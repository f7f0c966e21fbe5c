import type { Clock } from './clock.js';

/** A pending timer, as `Timers.setTimeout`/`setInterval` return it; only good for clearing it. */
export type TimerHandle = unknown;

/**
 * Waiting, injected like the Clock: every component that waits takes Timers,
 * so tests drive it with {@link ManualTimers} instead of sleeping, and nothing
 * in src/ calls the global timers but this module.
 */
export interface Timers {
  /**
   * Runs `callback` once after `ms`. `keepAlive`: the pending timer holds the
   * process open (for waits during shutdown, whose later steps must still run);
   * by default it does not, so a retry due in 8 s never delays an exit.
   */
  setTimeout(callback: () => void, ms: number, keepAlive?: boolean): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  setInterval(callback: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle): void;
  /**
   * Runs `callback` once the I/O callbacks running now are done (Node's
   * setImmediate): after everything in the read being parsed, before any
   * timer. Cannot be cleared.
   */
  setImmediate(callback: () => void): void;
}

/**
 * Node's timers, unref'd unless asked: a pending timer never keeps a stopping
 * process alive (listening sockets do that while it runs). The globals are
 * looked up at call time, so fake timers a test installs after import still apply.
 */
export const systemTimers: Timers = {
  setTimeout: (callback, ms, keepAlive = false) => {
    const timer = setTimeout(callback, ms);
    return keepAlive ? timer : timer.unref();
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  setInterval: (callback, ms) => setInterval(callback, ms).unref(),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
  setImmediate: (callback) => {
    setImmediate(callback);
  },
};

interface ManualTimer {
  dueMs: number;
  readonly everyMs: number | null;
  readonly callback: () => void;
  readonly order: number;
}

/**
 * Timers and a clock that move only when told to: `advance(ms)` runs every
 * timer that falls due on the way, in order of due time (then of creation),
 * with `nowMs()` reading each one's due time while it runs. Shipped, like
 * ManualClock, so that tests and replays drive components on their own time.
 */
export class ManualTimers implements Timers, Clock {
  #nowMs: number;
  #created = 0;
  readonly #pending = new Set<ManualTimer>();

  constructor(startMs = 0) {
    this.#nowMs = startMs;
  }

  nowMs(): number {
    return this.#nowMs;
  }

  /** Timers waiting to run. */
  get pending(): number {
    return this.#pending.size;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    return this.#add(callback, ms, null);
  }

  setInterval(callback: () => void, ms: number): TimerHandle {
    // Node runs a 0 ms interval every tick; a manual one at least 1 ms apart, or advance() would never end.
    return this.#add(callback, ms, Math.max(1, ms));
  }

  clearTimeout(handle: TimerHandle): void {
    this.#pending.delete(handle as ManualTimer);
  }

  clearInterval(handle: TimerHandle): void {
    this.#pending.delete(handle as ManualTimer);
  }

  /** Runs at the next `advance()`, even `advance(0)`, before timers due later. */
  setImmediate(callback: () => void): void {
    this.#add(callback, 0, null);
  }

  /** Moves time forward by `ms`, running the timers that fall due; refuses to go backwards. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`ManualTimers cannot move backwards (advance(${ms}))`);
    const endMs = this.#nowMs + ms;
    for (;;) {
      const next = this.#next();
      if (next === null || next.dueMs > endMs) break;
      this.#nowMs = Math.max(this.#nowMs, next.dueMs);
      if (next.everyMs === null) this.#pending.delete(next);
      else next.dueMs += next.everyMs;
      next.callback();
    }
    this.#nowMs = endMs;
  }

  #add(callback: () => void, ms: number, everyMs: number | null): ManualTimer {
    const timer: ManualTimer = { dueMs: this.#nowMs + Math.max(0, ms), everyMs, callback, order: this.#created++ };
    this.#pending.add(timer);
    return timer;
  }

  #next(): ManualTimer | null {
    let next: ManualTimer | null = null;
    for (const timer of this.#pending) {
      if (next === null || timer.dueMs < next.dueMs || (timer.dueMs === next.dueMs && timer.order < next.order)) next = timer;
    }
    return next;
  }
}
