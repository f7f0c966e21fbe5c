import type { LRUCache } from 'lru-cache';
import { growingLru } from '../../core/growing-lru.js';
import { canPay, refilledTokens } from '../../limiter/token-bucket.js';

/** New TLS handshakes one client address may start (`connections.tls_handshakes`). */
export interface HandshakeLimit {
  /** Tokens added per millisecond. */
  readonly ratePerMs: number;
  /** Handshakes at once after a quiet spell. */
  readonly burst: number;
}

/**
 * Addresses with a handshake bucket, at most; least recently seen are
 * forgotten first. Forgetting costs nothing but a fresh burst: a bucket
 * untouched for burst/rate (2.5 s at the defaults) is full again anyway, so
 * only addresses that connected in the last few seconds matter, and 100 000
 * of those is a flood from as many addresses. About 150 bytes each, grown
 * as used (growingLru).
 */
export const MAX_TRACKED_ADDRESSES = 100_000;

interface HandshakeBucket {
  tokens: number;
  stampMs: number;
}

/**
 * A token bucket per client address for new TLS handshakes, checked at TCP
 * accept before any TLS work (the most expensive thing a client can make the
 * proxy do). Pure bucket math from limiter/token-bucket.ts, on the time it is
 * handed; the table is capped.
 */
export class HandshakeLimiter {
  #limit: HandshakeLimit;
  readonly #buckets: LRUCache<string, HandshakeBucket>;

  constructor(limit: HandshakeLimit, maxAddresses = MAX_TRACKED_ADDRESSES) {
    this.#limit = limit;
    this.#buckets = growingLru<string, HandshakeBucket>(maxAddresses);
  }

  /** Applies a reloaded limit; addresses keep their level, capped at the new burst. */
  configure(limit: HandshakeLimit): void {
    this.#limit = limit;
  }

  /** Takes one handshake from `ip`'s bucket at `nowMs`; false when it is empty (the connection is to be closed). */
  tryTake(ip: string, nowMs: number): boolean {
    const { ratePerMs, burst } = this.#limit;
    const bucket = this.#buckets.get(ip);
    if (bucket === undefined) {
      this.#buckets.set(ip, { tokens: burst - 1, stampMs: nowMs });
      return true;
    }
    const tokens = Math.min(burst, refilledTokens(bucket.tokens, bucket.stampMs, nowMs, ratePerMs, burst));
    // A clock that steps back must not move the stamp back and refill twice.
    bucket.stampMs = Math.max(bucket.stampMs, nowMs);
    if (!canPay(tokens, 1)) {
      bucket.tokens = tokens;
      return false;
    }
    bucket.tokens = tokens - 1;
    return true;
  }

  /** Addresses with a bucket now. */
  get size(): number {
    return this.#buckets.size;
  }
}
