import { describe, expect, it } from 'vitest';
import { BinaryKeyLru } from '../../../src/limiter/stores/binary-key-lru.js';

/** A key of four address words; `n` picks the last one, `namespace` is passed beside it. */
function words(n: number, first = 0x0a000000): Int32Array {
  return Int32Array.of(first, 0, 0, n);
}

const NONE = -1;

describe('BinaryKeyLru', () => {
  it('numbers rows 0 … size−1 as keys come, then gives each new key the row of the least recently seen', () => {
    const evicted: number[] = [];
    const lru = new BinaryKeyLru(3, (row) => evicted.push(row));
    expect([1, 2, 3].map((n) => lru.insert(0, words(n), 0))).toEqual([0, 1, 2]);
    expect(lru.get(0, words(1), 0)).toBe(0); // 1 is now the most recent: 2 is the oldest
    expect(lru.peek(0, words(2), 0)).toBe(1); // a peek does not count as seeing it
    expect(lru.insert(0, words(4), 0)).toBe(1);
    expect(evicted).toEqual([1]);
    expect(lru.peek(0, words(2), 0)).toBe(NONE);
    expect(lru.insert(0, words(5), 0)).toBe(2); // 3 was the oldest
    expect(lru.insert(0, words(6), 0)).toBe(0); // then 1
    expect(lru.size).toBe(3);
    expect([4, 5, 6].map((n) => lru.peek(0, words(n), 0))).toEqual([1, 2, 0]);
  });

  it('tells keys apart by every word and by the namespace, reading the words at the offset given', () => {
    const lru = new BinaryKeyLru(10, () => {});
    const packed = Int32Array.of(99, 0x0a000000, 0, 0, 7, 98, 0x0a000000, 0, 0, 8);
    const first = lru.insert(1, packed, 1);
    const second = lru.insert(1, packed, 6);
    expect(lru.peek(2, packed, 1)).toBe(NONE);
    for (let word = 0; word < 4; word++) {
      const other = words(7);
      other[word] = (other[word] as number) ^ 1;
      expect(lru.peek(1, other, 0)).toBe(NONE);
    }
    expect([lru.peek(1, words(7), 0), lru.peek(1, words(8), 0)]).toEqual([first, second]);
  });

  it('keeps its order through many touches and past its growth steps', () => {
    const cap = 5_000;
    const lru = new BinaryKeyLru(cap, () => {});
    for (let i = 0; i < cap; i++) lru.insert(0, words(i), 0);
    // Touch the even keys, newest last: the odd ones are now the oldest, in order.
    for (let i = 0; i < cap; i += 2) lru.get(0, words(i), 0);
    const rows: number[] = [];
    for (let i = 0; i < cap / 2; i++) rows.push(lru.insert(1, words(i), 0));
    expect(rows).toEqual(Array.from({ length: cap / 2 }, (_, i) => 2 * i + 1));
    expect(lru.peek(0, words(1), 0)).toBe(NONE);
    expect(lru.peek(0, words(0), 0)).toBe(0);
    expect(lru.insert(2, words(0), 0)).toBe(0); // the even keys go next, oldest touched first
  });

  it('answers like a plain LRU through 50,000 random gets and inserts, evicting from the slots\' probe runs', () => {
    // A cap of 512 fills its 1,024 slots half full, the most the table
    // allows: runs are long, and some wrap past the last slot, where the
    // shift back on eviction is easiest to get wrong. A fixed seed and
    // pseudo-random order make a failure repeatable.
    const cap = 512;
    const lru = new BinaryKeyLru(cap, () => {}, 12345);
    const model = new Map<number, number>(); // key → row, in recency order (oldest first)
    let state = 1;
    const next = (): number => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) % 1_500;
    for (let step = 0; step < 50_000; step++) {
      const key = next();
      const expected = model.get(key);
      const row = lru.get(0, words(key), 0);
      expect(row).toBe(expected ?? NONE);
      if (expected !== undefined) {
        model.delete(key);
        model.set(key, expected);
        continue;
      }
      let newRow = model.size;
      if (model.size === cap) {
        const [oldest, oldestRow] = model.entries().next().value as [number, number];
        model.delete(oldest);
        newRow = oldestRow;
      }
      expect(lru.insert(0, words(key), 0)).toBe(newRow);
      model.set(key, newRow);
    }
    expect(lru.size).toBe(cap);
    for (const [key, row] of model) expect(lru.peek(0, words(key), 0)).toBe(row);
  });

  it('with a cap of one, each key replaces the last', () => {
    const evicted: number[] = [];
    const lru = new BinaryKeyLru(1, (row) => evicted.push(row));
    expect(lru.insert(0, words(1), 0)).toBe(0);
    expect(lru.get(0, words(1), 0)).toBe(0);
    expect(lru.insert(0, words(2), 0)).toBe(0);
    expect(lru.insert(0, words(3), 0)).toBe(0);
    expect(evicted).toEqual([0, 0]);
    expect([lru.peek(0, words(1), 0), lru.peek(0, words(2), 0), lru.peek(0, words(3), 0), lru.size]).toEqual([NONE, NONE, 0, 1]);
  });

  it('refuses a cap that is not a whole number from 1 to 2^31−1', () => {
    expect(() => new BinaryKeyLru(0, () => {})).toThrow(RangeError);
    expect(() => new BinaryKeyLru(1.5, () => {})).toThrow(/whole number/);
    expect(() => new BinaryKeyLru(2 ** 31, () => {})).toThrow(/2\^31−1/);
  });
});
