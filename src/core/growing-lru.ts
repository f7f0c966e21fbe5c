import { LRUCache } from 'lru-cache';

/** lru-cache options this factory owns: the cap is given as `cap`. */
export type GrowingLruOptions<K extends {}, V extends {}> = Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation' | 'maxEntrySize'>;

/**
 * An LRU of at most `cap` entries whose memory grows with its contents, for
 * tables that are rarely full (strikes, ban history). lru-cache's `max`
 * allocates its arrays for the whole cap up front: at the default million
 * entries that is ~16 MB of RSS and ~0.1 s of start-up per table, and slots
 * every major garbage collection marks even while empty. A size cap of one
 * unit per entry bounds the table the same way (least recently used out
 * first) without preallocating. A full table pays for it: JS-array links and
 * growth slack cost about 35 bytes more per entry than `max`.
 */
export function growingLru<K extends {}, V extends {}>(cap: number, options: GrowingLruOptions<K, V> = {}): LRUCache<K, V> {
  if (!Number.isSafeInteger(cap) || cap < 1) throw new RangeError(`LRU cap must be a positive whole number, got ${cap}`);
  return new LRUCache<K, V>({ ...options, maxSize: cap, sizeCalculation: () => 1 } as LRUCache.Options<K, V, unknown>);
}
