import { describe, expect, it } from 'vitest';
import { GenerationalCache } from '../../../src/core/generational-cache.js';

describe('GenerationalCache', () => {
  it('holds at most its entries, keeps what is used, and forgets what was not used for a generation', () => {
    const cache = new GenerationalCache<string, number>(4);
    cache.set('a', 1);
    cache.set('b', 2);
    cache.set('c', 3); // a, b become the old generation
    expect(cache.get('a')).toBe(1); // moved to the young one: c, a
    cache.set('d', 4); // young full (c, a): it becomes the old one, b is forgotten
    expect(cache.get('b')).toBeUndefined();
    expect([cache.get('a'), cache.get('c'), cache.get('d')]).toEqual([1, 3, 4]);
    expect(cache.size).toBeLessThanOrEqual(4);
    for (let i = 0; i < 1_000; i++) cache.set(`k${i}`, i);
    expect(cache.size).toBeLessThanOrEqual(4);
    expect(cache.get('k999')).toBe(999);
  });

  it('bounds the weight too, and a key set twice keeps its first value', () => {
    const cache = new GenerationalCache<string, string>(1_000, { maxWeight: 100, weigh: (value) => value.length });
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, 'x'.repeat(10));
    expect(cache.weight).toBeLessThanOrEqual(100);
    expect(cache.size).toBeLessThanOrEqual(10);
    cache.set('k99', 'other');
    expect(cache.get('k99')).toBe('x'.repeat(10));
  });

  it('refuses a size that cannot hold two generations', () => {
    expect(() => new GenerationalCache(1)).toThrow(/at least 2/);
  });
});
