import { LRUCache } from 'lru-cache';
import type { BucketLayout } from '../bucket-spec.js';
import { ADMITTED, type BucketStore, type BucketTake, type TakeOutcome } from '../bucket-store.js';
import { canPay, msUntilAffordable, refilledTokens } from '../token-bucket.js';

/**
 * One client key's buckets: `levels[2*slot]` is the token level and
 * `levels[2*slot+1]` the time it was measured. A flat number array keeps a
 * record near 100 bytes, which is what lets a million clients fit in memory.
 */
interface ClientBuckets {
  layout: BucketLayout;
  levels: number[];
}

/** Per-process bucket state in a capped LRU: memory is bounded whatever the number of attackers. */
export class MemoryBucketStore implements BucketStore {
  readonly #records: LRUCache<string, ClientBuckets>;
  /** Keys per scope, kept by set/dispose so a scrape need not walk a million entries. */
  readonly #perScope = { ip: 0, prefix: 0 };

  /**
   * @param maxTracked cap on client keys (addresses plus prefixes). When full,
   * the least recently seen key is forgotten; it comes back with full buckets,
   * the same trade-off nginx's `limit_req_zone` makes.
   */
  constructor(maxTracked: number) {
    this.#records = new LRUCache({
      max: maxTracked,
      dispose: (record) => {
        this.#perScope[record.layout.scope]--;
      },
    });
  }

  get size(): number {
    return this.#records.size;
  }

  /** Tracked keys by scope: addresses and prefixes. */
  sizeByScope(): { ip: number; prefix: number } {
    return { ...this.#perScope };
  }

  take(takes: readonly BucketTake[], nowMs: number): TakeOutcome {
    let worst: { bucket: BucketTake['buckets'][number]; waitMs: number } | null = null;
    const records: ClientBuckets[] = [];
    for (const take of takes) {
      const record = this.#recordFor(take, nowMs);
      records.push(record);
      for (const bucket of take.buckets) {
        const i = bucket.slot * 2;
        const tokens = refilledTokens(record.levels[i] as number, record.levels[i + 1] as number, nowMs, bucket.ratePerMs, bucket.burst);
        if (!canPay(tokens, bucket.cost)) {
          const waitMs = msUntilAffordable(tokens, bucket.cost, bucket.ratePerMs);
          if (worst === null || waitMs > worst.waitMs) worst = { bucket, waitMs };
        }
      }
    }
    if (worst !== null) return { admitted: false, bucket: worst.bucket, retryAfterMs: worst.waitMs };

    takes.forEach((take, t) => {
      const levels = (records[t] as ClientBuckets).levels;
      for (const bucket of take.buckets) {
        const i = bucket.slot * 2;
        levels[i] = refilledTokens(levels[i] as number, levels[i + 1] as number, nowMs, bucket.ratePerMs, bucket.burst) - bucket.cost;
        levels[i + 1] = nowMs;
      }
    });
    return ADMITTED;
  }

  /** Bucket levels of one key as of `nowMs`, by bucket id (for `explain` and tests); null if untracked. */
  peek(key: string, nowMs: number): Map<string, number> | null {
    const record = this.#records.peek(key);
    if (!record) return null;
    return new Map(
      record.layout.buckets.map((bucket) => {
        const i = bucket.slot * 2;
        return [bucket.id, refilledTokens(record.levels[i] as number, record.levels[i + 1] as number, nowMs, bucket.ratePerMs, bucket.burst)];
      }),
    );
  }

  #recordFor(take: BucketTake, nowMs: number): ClientBuckets {
    const record = this.#records.get(take.key);
    if (record === undefined) {
      const fresh: ClientBuckets = { layout: take.layout, levels: fullLevels(take.layout, nowMs) };
      this.#records.set(take.key, fresh);
      this.#perScope[take.layout.scope]++;
      return fresh;
    }
    if (record.layout !== take.layout) migrate(record, take.layout, nowMs);
    return record;
  }
}

function fullLevels(layout: BucketLayout, nowMs: number): number[] {
  const levels = new Array<number>(layout.buckets.length * 2);
  for (const bucket of layout.buckets) {
    levels[bucket.slot * 2] = bucket.burst;
    levels[bucket.slot * 2 + 1] = nowMs;
  }
  return levels;
}

/** Carries a record across a policy reload: buckets whose id survived keep their level, new ones start full. */
function migrate(record: ClientBuckets, layout: BucketLayout, nowMs: number): void {
  const levels = fullLevels(layout, nowMs);
  for (const bucket of layout.buckets) {
    const oldSlot = record.layout.slotById.get(bucket.id);
    if (oldSlot === undefined) continue;
    levels[bucket.slot * 2] = record.levels[oldSlot * 2] as number;
    levels[bucket.slot * 2 + 1] = record.levels[oldSlot * 2 + 1] as number;
  }
  record.layout = layout;
  record.levels = levels;
}
