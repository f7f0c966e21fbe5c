import { IP_KEY, PREFIX_KEY, type ClientKey } from '../../identity/client-key.js';
import type { BucketLayout, BucketScope } from '../bucket-spec.js';
import { ADMITTED, type BucketStore, type BucketTake, type TakeOutcome } from '../bucket-store.js';
import { canPay, msUntilAffordable, refilledTokens } from '../token-bucket.js';
import { BinaryKeyLru } from './binary-key-lru.js';

/** Slots the level slab starts with; it doubles as keys arrive, up to the cap. */
const INITIAL_SLOTS = 1_024;
/** In a take's row list: the key was forgotten within the same call (see `take`). */
const FORGOTTEN = -1;
/** Not held (BinaryKeyLru's answer). */
const NONE = -1;
/** A key's namespace is its owner's number above the ClientKey's tag word (scope, family, prefix length: below 2^10). */
const OWNER_SHIFT = 10;
const MAX_OWNERS = 2 ** (31 - OWNER_SHIFT);

/** Marks as FORGOTTEN each of the first `count` rows that a later take of the same call was given. */
function markForgotten(rows: Int32Array, count: number): void {
  for (let later = count - 1; later > 0; later--) {
    for (let earlier = 0; earlier < later; earlier++) if (rows[earlier] === rows[later]) rows[earlier] = FORGOTTEN;
  }
}

/**
 * Per-process bucket state, capped: memory is bounded whatever the number of
 * attackers.
 *
 * Levels live in one Float64Array slab, a fixed-width row per client key:
 * `[tokens, measuredAtMs]` per bucket of the key's layout. The LRU maps a key
 * (owner, and the client's address or prefix in binary) to its row number and
 * gives a forgotten key's row to the next new key. No object or string per
 * client: the store is typed arrays only, which no collection marks. Slab and
 * LRU both grow with the keys held, up to the cap, so a proxy that sees a few
 * thousand clients pays for a few thousand.
 */
export class MemoryBucketStore implements BucketStore {
  readonly #rows: BinaryKeyLru;
  /** Owners (BucketTake.owner) by number, for the keys' namespace word. */
  readonly #owners = new Map<string, number>();
  readonly #maxRows: number;
  /** Doubles per row: the layout's number, then two per bucket of the widest layout seen. */
  #width = 3;
  #levels: Float64Array;
  /**
   * Layouts by number. A row starts with the number of the layout it was
   * written with (to carry levels across a reload): in the row's own cache
   * line, where a side array would cost a second memory access per lookup.
   */
  readonly #layouts: BucketLayout[] = [];
  readonly #layoutNumbers = new Map<BucketLayout, number>();
  /** Rows of the takes of the current call; takes come in ones and twos (address, prefix). */
  readonly #scratchRows = new Int32Array(4);
  /** Keys per scope, counted as keys come and are forgotten, so a scrape need not walk a million entries. */
  readonly #perScope = { ip: 0, prefix: 0 };

  /**
   * @param maxTracked cap on client keys (addresses plus prefixes). When full,
   * the least recently seen key is forgotten; it comes back with full buckets,
   * the same trade-off nginx's `limit_req_zone` makes.
   */
  constructor(maxTracked: number) {
    this.#maxRows = maxTracked;
    this.#levels = new Float64Array(Math.min(INITIAL_SLOTS, this.#maxRows) * this.#width);
    this.#rows = new BinaryKeyLru(maxTracked, (row) => this.#perScope[this.#layoutOfRow(row).scope]--);
  }

  get size(): number {
    return this.#rows.size;
  }

  /** Tracked keys by scope: addresses and prefixes. */
  sizeByScope(): { ip: number; prefix: number } {
    return { ...this.#perScope };
  }

  take(takes: readonly BucketTake[], nowMs: number): TakeOutcome {
    // Rows first (creating them may grow the slab), then check, then charge.
    const rows = takes.length <= this.#scratchRows.length ? this.#scratchRows : new Int32Array(takes.length);
    for (let t = 0; t < takes.length; t++) rows[t] = this.#rowFor(takes[t] as BucketTake, nowMs);
    // Only a table with fewer rows than this request has keys can give an
    // earlier key's row to a later one within the call: that key is
    // forgotten, and its take is judged on full buckets and charged nowhere.
    if (takes.length > this.#maxRows) markForgotten(rows, takes.length);
    const levels = this.#levels;
    const width = this.#width;

    let worstBucket: BucketTake['buckets'][number] | null = null;
    let worstWaitMs = 0;
    for (let t = 0; t < takes.length; t++) {
      const buckets = (takes[t] as BucketTake).buckets;
      const row = rows[t] as number;
      const base = row * width;
      for (let b = 0; b < buckets.length; b++) {
        const bucket = buckets[b] as BucketTake['buckets'][number];
        const i = base + 1 + bucket.slot * 2;
        const tokens = row === FORGOTTEN ? bucket.burst : refilledTokens(levels[i] as number, levels[i + 1] as number, nowMs, bucket.ratePerMs, bucket.burst);
        if (!canPay(tokens, bucket.cost)) {
          const waitMs = msUntilAffordable(tokens, bucket.cost, bucket.ratePerMs);
          if (worstBucket === null || waitMs > worstWaitMs) {
            worstBucket = bucket;
            worstWaitMs = waitMs;
          }
        }
      }
    }
    if (worstBucket !== null) return { admitted: false, bucket: worstBucket, retryAfterMs: worstWaitMs };

    for (let t = 0; t < takes.length; t++) {
      const buckets = (takes[t] as BucketTake).buckets;
      const row = rows[t] as number;
      if (row === FORGOTTEN) continue;
      const base = row * width;
      for (let b = 0; b < buckets.length; b++) {
        const bucket = buckets[b] as BucketTake['buckets'][number];
        const i = base + 1 + bucket.slot * 2;
        levels[i] = refilledTokens(levels[i] as number, levels[i + 1] as number, nowMs, bucket.ratePerMs, bucket.burst) - bucket.cost;
        levels[i + 1] = nowMs;
      }
    }
    return ADMITTED;
  }

  /**
   * Gives back what `take` charged, capped at each bucket's burst: a request
   * the shared store refused after these buckets admitted it, so the node's
   * own buckets never run ahead of what the cluster let through. A key that
   * has been forgotten since is left alone.
   */
  refund(takes: readonly BucketTake[], nowMs: number): void {
    for (const take of takes) {
      const row = this.#peekRow(take.owner, take.layout.scope, take.client);
      if (row === NONE || this.#levels[row * this.#width] !== this.#numberOf(take.layout)) continue;
      const base = row * this.#width;
      for (const bucket of take.buckets) {
        const i = base + 1 + bucket.slot * 2;
        this.#levels[i] = Math.min(bucket.burst, refilledTokens(this.#levels[i] as number, this.#levels[i + 1] as number, nowMs, bucket.ratePerMs, bucket.burst) + bucket.cost);
        this.#levels[i + 1] = nowMs;
      }
    }
  }

  /** Bucket levels of one owner's buckets of `client`'s address or prefix as of `nowMs`, by bucket id (for `explain` and tests); null if untracked. */
  peek(owner: string, scope: BucketScope, client: ClientKey, nowMs: number): Map<string, number> | null {
    const row = this.#peekRow(owner, scope, client);
    if (row === NONE) return null;
    const layout = this.#layoutOfRow(row);
    const base = row * this.#width;
    return new Map(
      layout.buckets.map((bucket) => {
        const i = base + 1 + bucket.slot * 2;
        return [bucket.id, refilledTokens(this.#levels[i] as number, this.#levels[i + 1] as number, nowMs, bucket.ratePerMs, bucket.burst)];
      }),
    );
  }

  #rowFor(take: BucketTake, nowMs: number): number {
    if (1 + take.layout.buckets.length * 2 > this.#width) this.#fit(take.layout);
    const at = take.layout.scope === 'ip' ? IP_KEY : PREFIX_KEY;
    const words = take.client.words;
    const namespace = this.#namespace(take.owner, words[at] as number);
    let row = this.#rows.get(namespace, words, at + 1);
    if (row === NONE) {
      row = this.#rows.insert(namespace, words, at + 1);
      if ((row + 1) * this.#width > this.#levels.length) this.#resize(Math.min(this.#maxRows, Math.max(row + 1, (this.#levels.length / this.#width) * 2)), this.#width);
      this.#fill(row, take.layout, nowMs);
      this.#perScope[take.layout.scope]++;
    } else if (this.#levels[row * this.#width] !== this.#numberOf(take.layout)) {
      this.#migrate(row, take.layout, nowMs);
    }
    return row;
  }

  #peekRow(owner: string, scope: BucketScope, client: ClientKey): number {
    const at = scope === 'ip' ? IP_KEY : PREFIX_KEY;
    return this.#rows.peek(this.#namespace(owner, client.words[at] as number), client.words, at + 1);
  }

  /** The namespace word of a key: its owner's number and the key's tag (see ClientKey.words). */
  #namespace(owner: string, tag: number): number {
    let number = this.#owners.get(owner);
    if (number === undefined) {
      // Owners are the global rules and each site name a policy ever had: a handful.
      if (this.#owners.size === MAX_OWNERS) throw new RangeError(`MemoryBucketStore holds buckets of at most ${MAX_OWNERS} owners (sites)`);
      number = this.#owners.size;
      this.#owners.set(owner, number);
    }
    return (number << OWNER_SHIFT) | tag;
  }

  #numberOf(layout: BucketLayout): number {
    let number = this.#layoutNumbers.get(layout);
    if (number === undefined) {
      // Reloads are rare; layouts of policies no row uses any more are few and small.
      number = this.#layouts.length;
      this.#layouts.push(layout);
      this.#layoutNumbers.set(layout, number);
    }
    return number;
  }

  #layoutOfRow(row: number): BucketLayout {
    return this.#layouts[this.#levels[row * this.#width] as number] as BucketLayout;
  }

  /** Widens every row when a (reloaded) layout has more buckets than rows hold. */
  #fit(layout: BucketLayout): void {
    const needed = 1 + layout.buckets.length * 2;
    if (needed > this.#width) this.#resize(this.#levels.length / this.#width, needed);
  }

  #resize(rows: number, width: number): void {
    const old = this.#levels;
    const oldWidth = this.#width;
    const levels = new Float64Array(rows * width);
    if (width === oldWidth) levels.set(old.subarray(0, Math.min(old.length, levels.length)));
    else for (let row = 0; row < this.#rows.size; row++) levels.set(old.subarray(row * oldWidth, (row + 1) * oldWidth), row * width);
    this.#levels = levels;
    this.#width = width;
  }

  #fill(row: number, layout: BucketLayout, nowMs: number): void {
    const base = row * this.#width;
    this.#levels[base] = this.#numberOf(layout);
    for (const bucket of layout.buckets) {
      this.#levels[base + 1 + bucket.slot * 2] = bucket.burst;
      this.#levels[base + 2 + bucket.slot * 2] = nowMs;
    }
  }

  /** Carries a row across a policy reload: buckets whose id survived keep their level, new ones start full. */
  #migrate(row: number, layout: BucketLayout, nowMs: number): void {
    const previous = this.#layoutOfRow(row);
    const base = row * this.#width;
    const kept = previous.buckets.map((bucket) => [this.#levels[base + 1 + bucket.slot * 2] as number, this.#levels[base + 2 + bucket.slot * 2] as number] as const);
    if (previous.scope !== layout.scope) {
      this.#perScope[previous.scope]--;
      this.#perScope[layout.scope]++;
    }
    this.#fill(row, layout, nowMs);
    for (const bucket of layout.buckets) {
      const oldSlot = previous.slotById.get(bucket.id);
      if (oldSlot === undefined) continue;
      const [tokens, atMs] = kept[oldSlot] as readonly [number, number];
      this.#levels[base + 1 + bucket.slot * 2] = tokens;
      this.#levels[base + 2 + bucket.slot * 2] = atMs;
    }
  }
}
