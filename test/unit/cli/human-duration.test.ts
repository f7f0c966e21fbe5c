import { describe, expect, it } from 'vitest';
import { formatRelative, formatSeconds } from '../../../src/cli/human-duration.js';

describe('formatSeconds', () => {
  it.each([
    [0, '0s'],
    [0.4, '0s'],
    [1, '1s'],
    [45, '45s'],
    [60, '1m'],
    [552, '9m 12s'],
    [3_599, '59m 59s'],
    [3_600, '1h'],
    [5_400, '1h 30m'],
    [3_630, '1h'],
    [7_200, '2h'],
    [86_399, '23h 59m'],
    [86_400, '1d'],
    [259_200, '3d'],
    [273_600, '3d 4h'],
    [31_536_000, '365d'],
    [-5, '0s'],
  ])('%d s is %s', (seconds, text) => {
    expect(formatSeconds(seconds)).toBe(text);
  });
});

describe('formatRelative', () => {
  const now = Date.parse('2025-01-01T12:00:00Z');

  it('says how long ago, or how soon', () => {
    expect(formatRelative('2025-01-01T11:50:48Z', now)).toBe('9m 12s ago');
    expect(formatRelative('2025-01-01T14:00:00Z', now)).toBe('in 2h');
    expect(formatRelative('2025-01-01T12:00:00.300Z', now)).toBe('just now');
  });

  it('shows - for never and passes text it cannot read through', () => {
    expect(formatRelative(null, now)).toBe('-');
    expect(formatRelative('yesterday', now)).toBe('yesterday');
  });
});
