import { describe, expect, it } from 'vitest';
import { RowLru } from '../../../src/limiter/stores/row-lru.js';

describe('RowLru', () => {
  it('numbers rows 0 … size−1 as keys come, then gives each new key the row of the least recently seen', () => {
    const evicted: number[] = [];
    const lru = new RowLru(3, (row) => evicted.push(row));
    expect(['a', 'b', 'c'].map((key) => lru.insert(key))).toEqual([0, 1, 2]);
    expect(lru.get('a')).toBe(0); // a is now the most recent: b is the oldest
    expect(lru.peek('b')).toBe(1); // a peek does not count as seeing it
    expect(lru.insert('d')).toBe(1);
    expect(evicted).toEqual([1]);
    expect(lru.peek('b')).toBeUndefined();
    expect(lru.insert('e')).toBe(2); // c was the oldest
    expect(lru.insert('f')).toBe(0); // then a
    expect(lru.size).toBe(3);
    expect(['d', 'e', 'f'].map((key) => lru.peek(key))).toEqual([1, 2, 0]);
  });

  it('keeps its order through many touches and past its growth steps', () => {
    const cap = 5_000;
    const lru = new RowLru(cap, () => {});
    for (let i = 0; i < cap; i++) lru.insert(`k${i}`);
    // Touch the even keys, newest last: the odd ones are now the oldest, in order.
    for (let i = 0; i < cap; i += 2) lru.get(`k${i}`);
    const rows: number[] = [];
    for (let i = 0; i < cap / 2; i++) rows.push(lru.insert(`n${i}`));
    expect(rows).toEqual(Array.from({ length: cap / 2 }, (_, i) => 2 * i + 1));
    expect(lru.peek('k1')).toBeUndefined();
    expect(lru.peek('k0')).toBe(0);
    expect(lru.insert('m')).toBe(0); // the even keys go next, oldest touched first
  });

  it('with a cap of one, each key replaces the last', () => {
    const evicted: number[] = [];
    const lru = new RowLru(1, (row) => evicted.push(row));
    expect(lru.insert('a')).toBe(0);
    expect(lru.get('a')).toBe(0);
    expect(lru.insert('b')).toBe(0);
    expect(lru.insert('c')).toBe(0);
    expect(evicted).toEqual([0, 0]);
    expect([lru.peek('a'), lru.peek('b'), lru.peek('c'), lru.size]).toEqual([undefined, undefined, 0, 1]);
  });

  it('refuses a cap that is not a positive whole number', () => {
    expect(() => new RowLru(0, () => {})).toThrow(RangeError);
    expect(() => new RowLru(1.5, () => {})).toThrow(/whole number/);
  });
});
