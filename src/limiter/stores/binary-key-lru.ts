/** Rows grow in steps of this many at least, so a small table does not reallocate per key. */
const MIN_GROWTH = 1_024;
const NONE = -1;
/** Int32 words per row: namespace, four address words, older and newer link, hash. */
const ROW_WORDS = 8;
const OLDER = 5;
const NEWER = 6;
const HASH = 7;

/**
 * Binary keys to row numbers, at most `cap` of them, forgetting the least
 * recently seen key first. A key is a namespace word (whose buckets, which
 * scope: the caller's) and four words of address, read from a ClientKey's
 * `words` without building a string. Rows are numbered 0 … size−1 and handed
 * out by the table itself: once full, a new key takes the row of the key it
 * evicts, so the caller's per-row storage never needs a free list.
 *
 * Why not a Map of strings: at a million clients a Map lookup is three to four
 * cache misses (the string's hash, the bucket, the entry, its chain) and every
 * key is a string on the heap that each major collection marks. Here a lookup
 * is one probe of the slot array (row and hash side by side) and one read of
 * the row's own key words, which share a cache line with its recency links;
 * nothing is on the heap but the arrays. The slots are linear-probed and
 * deleted by shifting back, so there are no tombstones; the hash is seeded per
 * table, so a client who picks its addresses (a /64 holds 2^64) cannot aim
 * them at one run of slots.
 */
export class BinaryKeyLru {
  readonly #cap: number;
  readonly #onEvict: (row: number) => void;
  readonly #seed: number;
  #size = 0;
  #rows = new Int32Array(0);
  /** Per slot: row + 1 (0 for an empty slot) and the key's hash. Kept at most half full. */
  #slots = new Int32Array(0);
  #mask = 0;
  /** The least recently seen row (evicted next) and the most recent one. */
  #oldest = NONE;
  #newest = NONE;

  /**
   * @param cap most keys held (a whole number from 1 to 2^31−1).
   * @param onEvict told a row's key is being forgotten, before the row is given to a new key.
   * @param seed of the hash; random unless a test needs slots it can predict.
   */
  constructor(cap: number, onEvict: (row: number) => void, seed = (Math.random() * 2 ** 32) | 0) {
    if (!Number.isSafeInteger(cap) || cap < 1 || cap > 2 ** 31 - 1) throw new RangeError(`BinaryKeyLru cap must be a whole number from 1 to 2^31−1, got ${cap}`);
    this.#cap = cap;
    this.#onEvict = onEvict;
    this.#seed = seed;
    this.#rehash(16);
  }

  /** Keys held, which is also the number of rows in use (0 … size−1). */
  get size(): number {
    return this.#size;
  }

  /** The row of key (`namespace`, `words[at … at+3]`), marking it the most recently seen; −1 when not held. */
  get(namespace: number, words: Int32Array, at: number): number {
    const row = this.peek(namespace, words, at);
    if (row !== NONE && row !== this.#newest) {
      this.#unlink(row);
      this.#linkNewest(row);
    }
    return row;
  }

  /** The key's row without marking it seen; −1 when not held. */
  peek(namespace: number, words: Int32Array, at: number): number {
    const hash = this.#hash(namespace, words, at);
    const slots = this.#slots;
    const rows = this.#rows;
    for (let slot = hash & this.#mask; ; slot = (slot + 1) & this.#mask) {
      const stored = slots[2 * slot] as number;
      if (stored === 0) return NONE;
      if (slots[2 * slot + 1] !== hash) continue;
      const base = (stored - 1) * ROW_WORDS;
      if (rows[base] === namespace && rows[base + 1] === words[at] && rows[base + 2] === words[at + 1] && rows[base + 3] === words[at + 2] && rows[base + 4] === words[at + 3]) return stored - 1;
    }
  }

  /** Adds a key not held yet as the most recently seen and returns its row: a new one, or, when full, the evicted key's. */
  insert(namespace: number, words: Int32Array, at: number): number {
    let row: number;
    if (this.#size < this.#cap) {
      row = this.#size;
      if ((row + 1) * ROW_WORDS > this.#rows.length) this.#grow();
      this.#size++;
    } else {
      row = this.#oldest;
      this.#onEvict(row);
      this.#unlink(row);
      this.#deleteSlotOf(row);
    }
    const rows = this.#rows;
    const base = row * ROW_WORDS;
    rows[base] = namespace;
    for (let i = 0; i < 4; i++) rows[base + 1 + i] = words[at + i] as number;
    const hash = this.#hash(namespace, words, at);
    rows[base + HASH] = hash;
    this.#placeSlot(row, hash);
    this.#linkNewest(row);
    return row;
  }

  /** murmur3's mixing over the five words, seeded. */
  #hash(namespace: number, words: Int32Array, at: number): number {
    let h = mixIn(this.#seed, namespace);
    h = mixIn(h, words[at] as number);
    h = mixIn(h, words[at + 1] as number);
    h = mixIn(h, words[at + 2] as number);
    h = mixIn(h, words[at + 3] as number);
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    return h ^ (h >>> 16);
  }

  #placeSlot(row: number, hash: number): void {
    const slots = this.#slots;
    let slot = hash & this.#mask;
    while (slots[2 * slot] !== 0) slot = (slot + 1) & this.#mask;
    slots[2 * slot] = row + 1;
    slots[2 * slot + 1] = hash;
  }

  /** Empties the row's slot and shifts later entries of its run back, so every key stays reachable from its home slot. */
  #deleteSlotOf(row: number): void {
    const slots = this.#slots;
    const mask = this.#mask;
    let hole = (this.#rows[row * ROW_WORDS + HASH] as number) & mask;
    while (slots[2 * hole] !== row + 1) hole = (hole + 1) & mask;
    for (let next = (hole + 1) & mask; slots[2 * next] !== 0; next = (next + 1) & mask) {
      const home = (slots[2 * next + 1] as number) & mask;
      // The entry at `next` may move to the hole unless its home lies cyclically in (hole, next].
      const staysPut = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (staysPut) continue;
      slots[2 * hole] = slots[2 * next] as number;
      slots[2 * hole + 1] = slots[2 * next + 1] as number;
      hole = next;
    }
    slots[2 * hole] = 0;
  }

  #unlink(row: number): void {
    const rows = this.#rows;
    const older = rows[row * ROW_WORDS + OLDER] as number;
    const newer = rows[row * ROW_WORDS + NEWER] as number;
    if (older === NONE) this.#oldest = newer;
    else rows[older * ROW_WORDS + NEWER] = newer;
    if (newer === NONE) this.#newest = older;
    else rows[newer * ROW_WORDS + OLDER] = older;
  }

  #linkNewest(row: number): void {
    const rows = this.#rows;
    rows[row * ROW_WORDS + OLDER] = this.#newest;
    rows[row * ROW_WORDS + NEWER] = NONE;
    if (this.#newest === NONE) this.#oldest = row;
    else rows[this.#newest * ROW_WORDS + NEWER] = row;
    this.#newest = row;
  }

  /** Doubles the rows (at least MIN_GROWTH more), never past the cap; the slots follow at twice the rows. */
  #grow(): void {
    const held = this.#rows.length / ROW_WORDS;
    const count = Math.min(this.#cap, Math.max(held * 2, held + MIN_GROWTH));
    const rows = new Int32Array(count * ROW_WORDS);
    rows.set(this.#rows);
    this.#rows = rows;
    let slotCount = this.#mask + 1;
    while (slotCount < 2 * count) slotCount *= 2;
    if (slotCount > this.#mask + 1) this.#rehash(slotCount);
  }

  #rehash(slotCount: number): void {
    this.#slots = new Int32Array(2 * slotCount);
    this.#mask = slotCount - 1;
    for (let row = 0; row < this.#size; row++) this.#placeSlot(row, this.#rows[row * ROW_WORDS + HASH] as number);
  }
}

function mixIn(h: number, word: number): number {
  let k = Math.imul(word, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}
