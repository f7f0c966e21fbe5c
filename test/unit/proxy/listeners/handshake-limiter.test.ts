import { describe, expect, it } from 'vitest';
import { HandshakeLimiter } from '../../../../src/proxy/listeners/handshake-limiter.js';

/** `burst` at once, `perSec` after: the shape of `connections.tls_handshakes`. */
const limit = (perSec: number, burst: number) => ({ ratePerMs: perSec / 1000, burst });

describe('HandshakeLimiter', () => {
  it('lets an address start its burst of handshakes at once, then one per 1/rate', () => {
    const limiter = new HandshakeLimiter(limit(2, 3));
    expect([0, 0, 0, 0].map((nowMs) => limiter.tryTake('192.0.2.1', nowMs))).toEqual([true, true, true, false]);
    expect(limiter.tryTake('192.0.2.1', 499)).toBe(false);
    expect(limiter.tryTake('192.0.2.1', 500)).toBe(true);
    expect(limiter.tryTake('192.0.2.1', 500)).toBe(false);
  });

  it('keeps a bucket per address', () => {
    const limiter = new HandshakeLimiter(limit(1, 1));
    expect(limiter.tryTake('192.0.2.1', 0)).toBe(true);
    expect(limiter.tryTake('192.0.2.1', 0)).toBe(false);
    expect(limiter.tryTake('192.0.2.2', 0)).toBe(true);
    expect(limiter.tryTake('2001:db8::1', 0)).toBe(true);
  });

  it('never refills past the burst, and a reloaded smaller burst caps what an address has', () => {
    const limiter = new HandshakeLimiter(limit(10, 5));
    expect(limiter.tryTake('192.0.2.1', 0)).toBe(true);
    limiter.configure(limit(10, 2));
    expect([3_600_000, 3_600_000, 3_600_000].map((nowMs) => limiter.tryTake('192.0.2.1', nowMs))).toEqual([true, true, false]);
  });

  it('gains nothing from a clock that steps back', () => {
    const limiter = new HandshakeLimiter(limit(1, 1));
    expect(limiter.tryTake('192.0.2.1', 10_000)).toBe(true);
    expect(limiter.tryTake('192.0.2.1', 5_000)).toBe(false);
    expect(limiter.tryTake('192.0.2.1', 10_999)).toBe(false);
    expect(limiter.tryTake('192.0.2.1', 11_000)).toBe(true);
  });

  it('holds at most its cap of addresses, forgetting the least recently seen (who then start from a full burst)', () => {
    const limiter = new HandshakeLimiter(limit(1, 1), 3);
    for (const ip of ['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.4']) expect(limiter.tryTake(ip, 0)).toBe(true);
    expect(limiter.size).toBe(3);
    expect(limiter.tryTake('192.0.2.4', 0)).toBe(false);
    expect(limiter.tryTake('192.0.2.1', 0)).toBe(true);
  });
});
