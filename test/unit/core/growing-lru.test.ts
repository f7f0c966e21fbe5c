import { describe, expect, it } from 'vitest';
import { growingLru } from '../../../src/core/growing-lru.js';

describe('growingLru', () => {
  it('keeps at most cap entries, forgetting the least recently used first, and tells dispose', () => {
    const disposed: string[] = [];
    const lru = growingLru<string, number>(3, { dispose: (_value, key) => disposed.push(key) });
    for (const key of ['a', 'b', 'c']) lru.set(key, 1);
    lru.get('a');
    lru.set('d', 1);
    expect([...lru.keys()].sort()).toEqual(['a', 'c', 'd']);
    expect(disposed).toEqual(['b']);
    lru.set('e', 1);
    expect(lru.size).toBe(3);
    expect(lru.has('c')).toBe(false);
  });

  it('allocates as it fills, not for the whole cap up front', () => {
    const before = process.memoryUsage().heapUsed;
    const lru = growingLru<string, number>(10_000_000);
    lru.set('one', 1);
    // lru-cache's own `max` would allocate two 10M-slot arrays here: 80 MB at least.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(8 * 1024 * 1024);
  });

  it('refuses a cap that is not a positive whole number', () => {
    expect(() => growingLru(0)).toThrow(RangeError);
    expect(() => growingLru(1.5)).toThrow(/positive whole number/);
  });
});
