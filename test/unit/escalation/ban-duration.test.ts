import { describe, expect, it } from 'vitest';
import { banDurationMs, nextBanNumber } from '../../../src/escalation/ban-duration.js';

const MIN = 60_000;
const DAY = 86_400_000;
const policy = { banMs: 10 * MIN, factor: 2, maxBanMs: 7 * DAY, forgetAfterMs: 30 * DAY };

describe('ban durations', () => {
  it('grows by the factor for each further ban, up to the cap', () => {
    expect([1, 2, 3, 4].map((nth) => banDurationMs(nth, policy))).toEqual([10 * MIN, 20 * MIN, 40 * MIN, 80 * MIN]);
    expect(banDurationMs(11, policy)).toBe(7 * DAY);
    expect(banDurationMs(5000, policy)).toBe(7 * DAY);
  });

  it('keeps bans equal with factor 1', () => {
    expect(banDurationMs(9, { ...policy, factor: 1 })).toBe(10 * MIN);
  });

  it('counts a ban as a repeat only within forget_after of the previous one\'s end', () => {
    expect(nextBanNumber(undefined, 0, policy)).toBe(1);
    expect(nextBanNumber({ bans: 3, lastEndMs: 0 }, 30 * DAY, policy)).toBe(4);
    expect(nextBanNumber({ bans: 3, lastEndMs: 0 }, 30 * DAY + 1, policy)).toBe(1);
  });
});
