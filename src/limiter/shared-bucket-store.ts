import type { BucketLayout, BucketSpec } from './bucket-spec.js';
import type { TakeOutcome } from './bucket-store.js';

/** The buckets of one client key a request must also pay in the shared store; a copy the engine never touches again. */
export interface SharedKeyTake {
  readonly key: string;
  readonly layout: BucketLayout;
  readonly buckets: readonly BucketSpec[];
}

/**
 * What a request the node's own buckets admitted must still pay in the
 * buckets every node shares. `hashTag` is the client's prefix: every key of
 * one request carries it, so they all hash to one Redis Cluster slot and one
 * atomic script can take them.
 */
export interface SharedTake {
  readonly hashTag: string;
  readonly takes: readonly SharedKeyTake[];
}

/** Why a shared check did not answer in time, when it did not. */
export type SharedUnavailable = { readonly admitted: null; readonly reason: 'timeout' | 'down' | 'error' };

/**
 * Bucket levels shared by every node of a cluster. Unlike the memory store it
 * is asynchronous, so the engine never calls it: the engine decides on the
 * node's own buckets and hands an admitted request's takes to the proxy,
 * which awaits this (see DecisionEngine.settleShared).
 */
export interface SharedBucketStore {
  /** Charges every bucket or none, on the store's own clock; `admitted: null` when the store could not answer within its timeout. */
  take(request: SharedTake): Promise<TakeOutcome | SharedUnavailable>;
}
