import type { LRUCache } from 'lru-cache';
import { growingLru } from '../core/growing-lru.js';

/** Strikes of one client in the current and the previous window. */
interface StrikeWindows {
  startMs: number;
  current: number;
  previous: number;
}

/**
 * Counts strikes (refused requests) per client: `threshold` strikes within
 * `windowMs` fire. A sliding-window counter: the previous fixed window's count
 * weighted by how much of it still overlaps the sliding window, plus the
 * current one's, as nginx and Cloudflare estimate rates. Three numbers per
 * client instead of a timestamp per strike; memory capped by an LRU.
 */
export class StrikeCounter {
  readonly #windows: LRUCache<string, StrikeWindows>;
  readonly #threshold: number;
  readonly #windowMs: number;

  constructor(threshold: number, windowMs: number, maxTracked: number) {
    this.#threshold = threshold;
    this.#windowMs = windowMs;
    this.#windows = growingLru(maxTracked);
  }

  /** Adds `weight` strikes to `key`; true when that reaches the threshold, which starts the count over. */
  add(key: string, weight: number, nowMs: number): boolean {
    let entry = this.#windows.get(key);
    if (entry === undefined) {
      entry = { startMs: nowMs, current: 0, previous: 0 };
      this.#windows.set(key, entry);
    } else {
      this.#roll(entry, nowMs);
    }
    entry.current += weight;
    if (this.#estimate(entry, nowMs) >= this.#threshold) {
      this.#windows.delete(key);
      return true;
    }
    return false;
  }

  /** Strikes `key` holds within the window ending at `nowMs` (for `explain`). */
  level(key: string, nowMs: number): number {
    const entry = this.#windows.peek(key);
    if (entry === undefined) return 0;
    const copy = { ...entry };
    this.#roll(copy, nowMs);
    return this.#estimate(copy, nowMs);
  }

  get size(): number {
    return this.#windows.size;
  }

  /** Moves the fixed windows forward to the one containing `nowMs`. */
  #roll(entry: StrikeWindows, nowMs: number): void {
    const elapsed = nowMs - entry.startMs;
    if (elapsed < this.#windowMs) return;
    const windowsPassed = Math.floor(elapsed / this.#windowMs);
    entry.previous = windowsPassed === 1 ? entry.current : 0;
    entry.current = 0;
    entry.startMs += windowsPassed * this.#windowMs;
  }

  #estimate(entry: StrikeWindows, nowMs: number): number {
    const overlap = 1 - Math.min(1, (nowMs - entry.startMs) / this.#windowMs);
    return entry.previous * overlap + entry.current;
  }
}
