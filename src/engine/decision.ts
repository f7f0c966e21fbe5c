import type { BucketSpec } from '../limiter/bucket-spec.js';

/*
 * What the engine decides about one request. Decisions are values, never
 * exceptions: refusing a flood is the normal case, not an error.
 */

/** Forward the request upstream. */
export interface AllowDecision {
  readonly action: 'allow';
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
}

/** Refuse as malformed: the request target is one Apache would reject too (bad percent-encoding, NUL). */
export interface RejectDecision {
  readonly action: 'reject';
  readonly status: 400;
  readonly reason: string;
}

export type Decision = AllowDecision | LimitDecision | BlockDecision | RejectDecision;

/** Shared so an admitted request allocates no decision. */
export const ALLOW: AllowDecision = Object.freeze({ action: 'allow' });
