import { LRUCache } from 'lru-cache';
import type { ClientKey } from '../identity/client-key.js';

/** Refusals of one address or prefix in the current window. */
interface Tally {
  windowStartMs: number;
  refused: number;
  lastRule: string;
}

/** One row of `portcullis status`'s top lists. */
export interface Offender {
  /** An address or a prefix. */
  readonly key: string;
  readonly refused: number;
  readonly lastRule: string;
}

/**
 * Who is being refused lately, per address and per prefix, for `portcullis
 * status` and for logging a client's first refusal in a window (not every
 * one: a flood would bury the log). Fixed windows, capped LRUs: memory stays
 * bounded whatever the flood.
 */
export class RecentOffenders {
  readonly #ips: LRUCache<string, Tally>;
  readonly #prefixes: LRUCache<string, Tally>;
  readonly #windowMs: number;

  /**
   * @param windowMs how long a refusal counts (and how long before a client's next refusal is logged again)
   * @param maxTracked cap on addresses and on prefixes remembered
   */
  constructor(windowMs: number, maxTracked = 10_000) {
    this.#windowMs = windowMs;
    this.#ips = new LRUCache({ max: maxTracked });
    this.#prefixes = new LRUCache({ max: maxTracked });
  }

  /** Counts a refusal of `client` by `rule`; true when it is the client's first in the window. */
  record(client: ClientKey, rule: string, nowMs: number): boolean {
    this.#count(this.#prefixes, client.prefix, rule, nowMs);
    return this.#count(this.#ips, client.ip, rule, nowMs);
  }

  /** The `n` addresses refused most in the current window. */
  topAddresses(n: number, nowMs: number): Offender[] {
    return this.#top(this.#ips, n, nowMs);
  }

  /** The `n` prefixes refused most in the current window. */
  topPrefixes(n: number, nowMs: number): Offender[] {
    return this.#top(this.#prefixes, n, nowMs);
  }

  #count(table: LRUCache<string, Tally>, key: string, rule: string, nowMs: number): boolean {
    const tally = table.get(key);
    if (tally === undefined || nowMs - tally.windowStartMs >= this.#windowMs) {
      table.set(key, { windowStartMs: nowMs, refused: 1, lastRule: rule });
      return true;
    }
    tally.refused++;
    tally.lastRule = rule;
    return false;
  }

  #top(table: LRUCache<string, Tally>, n: number, nowMs: number): Offender[] {
    const live: Offender[] = [];
    for (const [key, tally] of table.entries()) {
      if (nowMs - tally.windowStartMs < this.#windowMs) live.push({ key, refused: tally.refused, lastRule: tally.lastRule });
    }
    return live.sort((a, b) => b.refused - a.refused || a.key.localeCompare(b.key)).slice(0, n);
  }
}
