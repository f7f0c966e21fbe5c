import type { BucketLayout, BucketSpec } from './bucket-spec.js';

/** Some buckets of one client key (an address or a prefix) that a request must pay. */
export interface BucketTake {
  /** The client key: an address (`192.0.2.7`) or a prefix (`192.0.2.0/24`). */
  readonly key: string;
  readonly layout: BucketLayout;
  readonly buckets: readonly BucketSpec[];
}

/** The request may pass; every bucket has been charged. */
export interface Admitted {
  readonly admitted: true;
}

/** The request must wait; no bucket has been charged. */
export interface BucketRefusal {
  readonly admitted: false;
  /** The bucket that needs the longest wait. */
  readonly bucket: BucketSpec;
  /** Milliseconds until every bucket could pay, i.e. an honest Retry-After. */
  readonly retryAfterMs: number;
}

export type TakeOutcome = Admitted | BucketRefusal;

/** Shared so the hot path allocates nothing for an admitted request. */
export const ADMITTED: Admitted = Object.freeze({ admitted: true });

/**
 * Where a node's own per-client bucket state lives. The contract is narrow
 * (take a set of buckets at `nowMs`, all or none) and synchronous; what
 * nodes share is behind SharedBucketStore, which the proxy awaits.
 */
export interface BucketStore {
  /**
   * Charges every bucket of every take, or none of them: a request refused by
   * one bucket does not drain the others (so a client held back by its prefix
   * keeps its own allowance). Synchronous, and `takes` is not kept: the
   * engine reuses the same array for the next request.
   */
  take(takes: readonly BucketTake[], nowMs: number): TakeOutcome;
  /** Gives back what an admitting `take` of these buckets charged (capped at burst); cluster mode refunds what the shared store refused. */
  refund(takes: readonly BucketTake[], nowMs: number): void;
  /** Token levels of one key's buckets at `nowMs`, by bucket id, charging nothing; null if the key is not tracked. */
  peek(key: string, nowMs: number): ReadonlyMap<string, number> | null;
  /** Client keys currently tracked. */
  readonly size: number;
}
