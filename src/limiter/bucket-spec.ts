/** Which client key a bucket counts: one address, or the prefix (/24, /64) it belongs to. */
export type BucketScope = 'ip' | 'prefix';

/** One bucket of one rule, as compiled from the policy. */
export interface BucketSpec {
  /**
   * Identity across policy reloads: the same rule, scope, rate and burst give the
   * same id, so a reload keeps the levels of buckets it did not change.
   */
  readonly id: string;
  readonly rule: string;
  readonly scope: BucketScope;
  /** Tokens refilled per millisecond. */
  readonly ratePerMs: number;
  /** The rate as written in the policy (`20/s`), for headers and messages. */
  readonly rateText: string;
  /** Capacity in tokens. */
  readonly burst: number;
  /** Tokens a matching request takes. */
  readonly cost: number;
  /** Index of this bucket in its scope's layout. */
  readonly slot: number;
}

/** All buckets of one scope in a policy, in slot order: the shape of a client's state. */
export interface BucketLayout {
  readonly scope: BucketScope;
  readonly buckets: readonly BucketSpec[];
  /** Slot of each bucket id, to carry state across a reload. */
  readonly slotById: ReadonlyMap<string, number>;
}

/** Builds a layout from buckets already numbered 0..n-1 by `slot`. */
export function createBucketLayout(scope: BucketScope, buckets: readonly BucketSpec[]): BucketLayout {
  return { scope, buckets, slotById: new Map(buckets.map((bucket) => [bucket.id, bucket.slot])) };
}
