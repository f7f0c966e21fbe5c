import { describe, expect, it } from 'vitest';
import { suggestClosest } from '../../../src/config/did-you-mean.js';

describe('suggestClosest', () => {
  const keys = ['rate', 'burst'];

  it('suggests across a transposition and a slip', () => {
    expect(suggestClosest('brust', keys)).toBe('burst');
    expect(suggestClosest('burts', keys)).toBe('burst');
    expect(suggestClosest('rat', keys)).toBe('rate');
  });

  it('suggests nothing when nothing is close', () => {
    expect(suggestClosest('maxretry', keys)).toBeNull();
  });

  it('is case-insensitive', () => {
    expect(suggestClosest('GTE', ['GET', 'HEAD'])).toBe('GET');
  });
});
