/** Links grow in steps of this many rows at least, so a small table does not reallocate per key. */
const MIN_GROWTH = 1_024;
const NONE = -1;

/**
 * Keys to row numbers, at most `cap` of them, forgetting the least recently
 * seen key first. Rows are numbered 0 … size−1 and handed out by the table
 * itself: once full, a new key takes the row of the key it evicts, so the
 * caller's per-row storage never needs a free list.
 *
 * The recency list is two Int32Arrays indexed by row, and everything grows
 * with the keys held, not with the cap: lru-cache's `max` allocates two
 * million-slot JS arrays before the first key (16 MB of heap, marked by every
 * major collection, and V8 sizes its garbage headroom by the live heap), and
 * its grow-on-demand mode keeps JS-array links and a size per entry instead.
 */
export class RowLru {
  readonly #cap: number;
  readonly #onEvict: (row: number) => void;
  readonly #rowOf = new Map<string, number>();
  readonly #keyOf: string[] = [];
  #older = new Int32Array(0);
  #newer = new Int32Array(0);
  /** The least recently seen row (evicted next) and the most recent one. */
  #oldest = NONE;
  #newest = NONE;

  /**
   * @param cap most keys held (a positive whole number).
   * @param onEvict told a row's key is being forgotten, before the row is given to a new key.
   */
  constructor(cap: number, onEvict: (row: number) => void) {
    if (!Number.isSafeInteger(cap) || cap < 1 || cap > 2 ** 31 - 1) throw new RangeError(`RowLru cap must be a whole number from 1 to 2^31−1, got ${cap}`);
    this.#cap = cap;
    this.#onEvict = onEvict;
  }

  /** Keys held, which is also the number of rows in use (0 … size−1). */
  get size(): number {
    return this.#keyOf.length;
  }

  /** The key's row, marking it the most recently seen; undefined when not held. */
  get(key: string): number | undefined {
    const row = this.#rowOf.get(key);
    if (row !== undefined && row !== this.#newest) {
      this.#unlink(row);
      this.#linkNewest(row);
    }
    return row;
  }

  /** The key's row without marking it seen; undefined when not held. */
  peek(key: string): number | undefined {
    return this.#rowOf.get(key);
  }

  /** Adds a key not held yet as the most recently seen and returns its row: a new one, or, when full, the evicted key's. */
  insert(key: string): number {
    let row: number;
    if (this.#keyOf.length < this.#cap) {
      row = this.#keyOf.length;
      if (row === this.#older.length) this.#grow();
      this.#keyOf.push(key);
    } else {
      row = this.#oldest;
      this.#onEvict(row);
      this.#rowOf.delete(this.#keyOf[row] as string);
      this.#unlink(row);
      this.#keyOf[row] = key;
    }
    this.#rowOf.set(key, row);
    this.#linkNewest(row);
    return row;
  }

  #unlink(row: number): void {
    const older = this.#older[row] as number;
    const newer = this.#newer[row] as number;
    if (older === NONE) this.#oldest = newer;
    else this.#newer[older] = newer;
    if (newer === NONE) this.#newest = older;
    else this.#older[newer] = older;
  }

  #linkNewest(row: number): void {
    this.#older[row] = this.#newest;
    this.#newer[row] = NONE;
    if (this.#newest === NONE) this.#oldest = row;
    else this.#newer[this.#newest] = row;
    this.#newest = row;
  }

  /** Doubles the links (at least MIN_GROWTH rows more), never past the cap. */
  #grow(): void {
    const rows = Math.min(this.#cap, Math.max(this.#older.length * 2, this.#older.length + MIN_GROWTH));
    const older = new Int32Array(rows);
    const newer = new Int32Array(rows);
    older.set(this.#older);
    newer.set(this.#newer);
    this.#older = older;
    this.#newer = newer;
  }
}
