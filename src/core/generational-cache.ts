/**
 * A bounded cache of two generations: new entries go into the young one; a
 * hit in the old one moves the entry to the young one; when the young one is
 * full (entries, or weight when a weigher is given) it becomes the old one
 * and the old one is dropped whole. What was not used for a generation goes
 * first, as in an LRU, for a Map lookup or two: lru-cache's per-entry
 * bookkeeping (and its size accounting) cost ~500 ns a miss against ~100 ns
 * here, which a stream of distinct keys (a flood of new paths, a replay) pays
 * on every request. Holds at most `maxEntries` entries and `maxWeight` weight.
 */
export class GenerationalCache<K, V> {
  readonly #generationEntries: number;
  readonly #generationWeight: number;
  readonly #weigh: ((value: V, key: K) => number) | null;
  #young = new Map<K, V>();
  #old = new Map<K, V>();
  #youngWeight = 0;
  #oldWeight = 0;

  /** `weigh` gives an entry's weight (e.g. characters held); without it only entries count. */
  constructor(maxEntries: number, options: { readonly maxWeight?: number; readonly weigh?: (value: V, key: K) => number } = {}) {
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 2) throw new RangeError(`cache size must be a whole number of at least 2, got ${maxEntries}`);
    this.#generationEntries = Math.floor(maxEntries / 2);
    this.#generationWeight = (options.maxWeight ?? Number.POSITIVE_INFINITY) / 2;
    this.#weigh = options.weigh ?? null;
  }

  /** The value of `key`, keeping it for another generation; undefined when absent or forgotten. */
  get(key: K): V | undefined {
    const young = this.#young.get(key);
    if (young !== undefined) return young;
    const old = this.#old.get(key);
    if (old === undefined) return undefined;
    this.#old.delete(key);
    this.#oldWeight -= this.#weightOf(old, key);
    this.#add(key, old);
    return old;
  }

  /** The value of `key` without keeping it longer. */
  peek(key: K): V | undefined {
    return this.#young.get(key) ?? this.#old.get(key);
  }

  /** Remembers `value` for `key` (a key already held keeps its first value: callers set only after a miss). */
  set(key: K, value: V): void {
    if (this.#young.has(key)) return;
    if (this.#old.has(key)) {
      this.get(key);
      return;
    }
    this.#add(key, value);
  }

  /** Entries held now. */
  get size(): number {
    return this.#young.size + this.#old.size;
  }

  /** Weight held now (0 without a weigher). */
  get weight(): number {
    return this.#youngWeight + this.#oldWeight;
  }

  #add(key: K, value: V): void {
    const weight = this.#weightOf(value, key);
    if (this.#young.size >= this.#generationEntries || this.#youngWeight + weight > this.#generationWeight) {
      this.#old = this.#young;
      this.#oldWeight = this.#youngWeight;
      this.#young = new Map();
      this.#youngWeight = 0;
    }
    this.#young.set(key, value);
    this.#youngWeight += weight;
  }

  #weightOf(value: V, key: K): number {
    return this.#weigh === null ? 0 : this.#weigh(value, key);
  }
}
