import { LRUCache } from 'lru-cache';

/** lru-cache options this factory owns: the cap is given as `cap`. */
export type GrowingLruOptions<K extends {}, V extends {}> = Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation' | 'maxEntrySize'>;

/**
 * An LRU of at most `cap` entries whose memory grows with its contents.
 * lru-cache's `max` allocates its arrays for the whole cap up front: at the
 * default million-client caps that cost ~28 MB per table at start, a third of
 * a second of start-up for three tables, and tens of milliseconds on every
 * major garbage collection spent marking empty slots (a visible p99 stall on a
 * quiet site). A size cap of one unit per entry bounds the table the same way
 * (least recently used out first) without preallocating.
 */
export function growingLru<K extends {}, V extends {}>(cap: number, options: GrowingLruOptions<K, V> = {}): LRUCache<K, V> {
  if (!Number.isSafeInteger(cap) || cap < 1) throw new RangeError(`LRU cap must be a positive whole number, got ${cap}`);
  return new LRUCache<K, V>({ ...options, maxSize: cap, sizeCalculation: () => 1 } as LRUCache.Options<K, V, unknown>);
}
