import type { ClientKey } from '../identity/client-key.js';
import type { BucketLayout, BucketScope, BucketSpec } from './bucket-spec.js';

/** Some buckets of one client key (its address or its prefix, by the layout's scope) that a request must pay. */
export interface BucketTake {
  /** Whose buckets: '' for the global rules', a site's name and a NUL for the site's own (BucketOwner.keyPrefix). */
  readonly owner: string;
  readonly client: ClientKey;
  readonly layout: BucketLayout;
  readonly buckets: readonly BucketSpec[];
}

/** A take's key as text (`192.0.2.7`, `shop` NUL `192.0.2.0/24`): the shared store's key, unique per owner, scope and client key. */
export function bucketKeyText(owner: string, scope: BucketScope, client: ClientKey): string {
  const key = scope === 'ip' ? client.ip : client.prefix;
  return owner === '' ? key : owner + key;
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
  /** Token levels of one owner's buckets of `client`'s address or prefix at `nowMs`, by bucket id, charging nothing; null if not tracked. */
  peek(owner: string, scope: BucketScope, client: ClientKey, nowMs: number): ReadonlyMap<string, number> | null;
  /** Client keys currently tracked. */
  readonly size: number;
}
