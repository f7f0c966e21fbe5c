import { describe, expect, it } from 'vitest';
import { StrikeCounter } from '../../../src/escalation/strike-counter.js';

describe('StrikeCounter', () => {
  it('fires when strikes arrive faster than the window forgets them', () => {
    const counter = new StrikeCounter(5, 10_000, 100);
    const fired = [0, 1, 2, 3, 4].map((i) => counter.add('a', 1, i * 10));
    expect(fired).toEqual([false, false, false, false, true]);
    // Firing empties the bucket: the count starts over.
    expect(counter.level('a', 50)).toBe(0);
  });

  it('fires for threshold strikes spread across one window', () => {
    const counter = new StrikeCounter(5, 10_000, 100);
    expect([0, 2_000, 4_000, 6_000, 9_999].map((t) => counter.add('a', 1, t))).toEqual([false, false, false, false, true]);
  });

  it('does not fire for strikes spread thinner than threshold per window', () => {
    const counter = new StrikeCounter(5, 10_000, 100);
    // One strike every 2.6 s is fewer than 4 per window: never 5.
    for (let i = 0; i < 100; i++) expect(counter.add('a', 1, i * 2_600)).toBe(false);
  });

  it('carries the previous window over, weighted by its overlap', () => {
    const counter = new StrikeCounter(5, 10_000, 100);
    counter.add('a', 4, 0);
    // At 15 s the sliding window [5 s, 15 s] still holds half of the previous fixed window.
    expect(counter.level('a', 15_000)).toBeCloseTo(2, 9);
    expect(counter.add('a', 2, 15_000)).toBe(false);
    expect(counter.add('a', 1, 15_000)).toBe(true);
  });

  it('counts weights and keeps clients apart', () => {
    const counter = new StrikeCounter(5, 10_000, 100);
    expect(counter.add('a', 4, 0)).toBe(false);
    expect(counter.add('b', 4, 0)).toBe(false);
    expect(counter.add('a', 1, 0)).toBe(true);
    expect(counter.level('b', 0)).toBe(4);
  });

  it('forgets strikes older than two windows', () => {
    const counter = new StrikeCounter(10, 10_000, 100);
    counter.add('a', 6, 0);
    expect(counter.level('a', 9_999)).toBe(6);
    expect(counter.level('a', 20_000)).toBe(0);
    expect(counter.level('a', 60_000)).toBe(0);
  });

  it('never tracks more clients than its cap', () => {
    const counter = new StrikeCounter(10, 10_000, 50);
    for (let i = 0; i < 1000; i++) counter.add(`c${i}`, 1, 0);
    expect(counter.size).toBe(50);
  });
});
