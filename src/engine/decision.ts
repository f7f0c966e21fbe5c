import type { BucketSpec } from '../limiter/bucket-spec.js';
import type { BucketTake } from '../limiter/bucket-store.js';
import type { SharedTake } from '../limiter/shared-bucket-store.js';

/*
 * What the engine decides about one request. Decisions are values, never
 * exceptions: refusing a flood is the normal case, not an error.
 */

/** A `mode: shadow` rule that would have refused this request. */
export interface ShadowRefusal {
  readonly kind: 'limit' | 'block';
  readonly rule: string;
}

/** Forward the request upstream. */
export interface AllowDecision {
  readonly action: 'allow';
  /** The shadow rule that would have refused it, if any: counted and logged, not enforced. */
  readonly shadow: ShadowRefusal | null;
  /**
   * Cluster mode: the node's own buckets admitted it, the shared ones must
   * too. The proxy awaits the shared store and settles with
   * DecisionEngine.settleShared before it forwards. Absent: nothing to share.
   */
  readonly shared?: PendingSharedTake;
}

/** An admitted request's takes, copied for the shared store, and what a refusal by it answers. */
export interface PendingSharedTake {
  readonly take: SharedTake;
  /** The same takes as the node's own store charged them, to give back if the shared store refuses. */
  readonly local: readonly BucketTake[];
  /** The status of each enforced rule, for a refusal. */
  readonly statusOf: (rule: string) => number;
}

/** Refuse for now: a bucket is empty. */
export interface LimitDecision {
  readonly action: 'limit';
  readonly rule: string;
  readonly status: number;
  /** The bucket that needs the longest wait. */
  readonly bucket: BucketSpec;
  /** When every bucket the request needs could pay again. */
  readonly retryAfterMs: number;
}

/** Refuse always: the path is blocked. */
export interface BlockDecision {
  readonly action: 'block';
  readonly rule: string;
  readonly status: number;
  /** Strikes this refusal counts for. */
  readonly strikes: number;
}

/**
 * Refuse as malformed: a request Apache would reject too (bad percent-encoding,
 * NUL, two Host headers: 400; a transfer coding other than chunked: 501).
 */
export interface RejectDecision {
  readonly action: 'reject';
  readonly status: 400 | 501;
  readonly reason: string;
}

/** Refuse: the client (or its prefix) is banned. */
export interface BanDecision {
  readonly action: 'ban';
  readonly status: number;
  /** The banned address or network. */
  readonly target: string;
  /** Until the ban ends. */
  readonly retryAfterMs: number;
}

export type Decision = AllowDecision | LimitDecision | BlockDecision | RejectDecision | BanDecision;

/** A refusal that may earn bans, with the bans it earned (usually none). */
export type Refusal = LimitDecision | BlockDecision | RejectDecision;

/** Shared so an admitted request allocates no decision. */
export const ALLOW: AllowDecision = Object.freeze({ action: 'allow', shadow: null });
