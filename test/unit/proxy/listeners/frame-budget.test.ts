import { describe, expect, it } from 'vitest';
import { FrameBudget } from '../../../../src/proxy/listeners/frame-budget.js';

describe('FrameBudget', () => {
  it('allows the burst at once, then refuses until time refills it', () => {
    const budget = new FrameBudget(3, 2, 0);
    expect([budget.take(0), budget.take(0), budget.take(0)]).toEqual([true, true, true]);
    expect(budget.take(0)).toBe(false);
    // 2 per second: one frame every 500 ms.
    expect(budget.take(499)).toBe(false);
    expect(budget.take(500)).toBe(true);
    expect(budget.take(500)).toBe(false);
  });

  it('never holds more than the burst after a quiet spell', () => {
    const budget = new FrameBudget(2, 10, 0);
    expect(budget.take(60_000)).toBe(true);
    expect(budget.take(60_000)).toBe(true);
    expect(budget.take(60_000)).toBe(false);
  });

  it('gains nothing from a clock that steps back, and does not refill twice after it', () => {
    const budget = new FrameBudget(1, 1, 1_000);
    expect(budget.take(1_000)).toBe(true);
    expect(budget.take(500)).toBe(false);
    expect(budget.take(1_999)).toBe(false);
    expect(budget.take(2_000)).toBe(true);
  });
});
