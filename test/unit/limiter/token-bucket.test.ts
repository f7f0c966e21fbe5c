import { describe, expect, it } from 'vitest';
import { canPay, msUntilAffordable, refilledTokens } from '../../../src/limiter/token-bucket.js';

const PER_SEC = (n: number) => n / 1000;

describe('token bucket arithmetic', () => {
  it('refills lazily at the rate and never above the burst', () => {
    expect(refilledTokens(0, 0, 500, PER_SEC(10), 100)).toBeCloseTo(5, 12);
    expect(refilledTokens(95, 0, 10_000, PER_SEC(10), 100)).toBe(100);
  });

  it('refills to exactly the burst after a long idle, without overflow', () => {
    expect(refilledTokens(0, 0, 365 * 86_400_000, PER_SEC(1000), 5)).toBe(5);
  });

  it('adds nothing when time stands still or steps back', () => {
    expect(refilledTokens(3, 1000, 1000, PER_SEC(10), 100)).toBe(3);
    expect(refilledTokens(3, 1000, 900, PER_SEC(10), 100)).toBe(3);
  });

  it('handles fractional rates: 1/3 s at 3/s refills one whole token', () => {
    const tokens = refilledTokens(0, 0, 1000 / 3, PER_SEC(3), 10);
    expect(canPay(tokens, 1)).toBe(true);
    expect(canPay(refilledTokens(0, 0, 1000 / 3 - 1, PER_SEC(3), 10), 1)).toBe(false);
  });

  it('handles slow rates: 5/min refills one token in 12 s', () => {
    const rate = 5 / 60_000;
    expect(canPay(refilledTokens(0, 0, 11_999, rate, 5), 1)).toBe(false);
    expect(canPay(refilledTokens(0, 0, 12_000, rate, 5), 1)).toBe(true);
    expect(msUntilAffordable(0, 1, rate)).toBeCloseTo(12_000, 6);
  });

  it('computes the wait for a cost larger than one', () => {
    expect(msUntilAffordable(0.5, 3, PER_SEC(1))).toBeCloseTo(2500, 9);
    expect(msUntilAffordable(3, 3, PER_SEC(1))).toBe(0);
  });
});
