import type { ServerResponse } from 'node:http';
import type { BanDecision, BlockDecision, LimitDecision, RejectDecision } from '../engine/decision.js';
import type { BucketSpec } from '../limiter/bucket-spec.js';
import { writePlainResponse } from './plain-response.js';

/** Writes the answer to a refused request: 429 (or the rule's status) for a limit, the block's or ban's status, or 400. */
export function writeRefusal(res: ServerResponse, decision: LimitDecision | BlockDecision | RejectDecision | BanDecision): void {
  switch (decision.action) {
    case 'ban':
      // The connection goes too: a banned client has no business keeping one open.
      writePlainResponse(res, decision.status, 'Forbidden', { connection: 'close', 'retry-after': String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))) });
      return;
    case 'limit':
      writePlainResponse(res, decision.status, 'Too many requests', rateLimitHeaders(decision.bucket, decision.retryAfterMs));
      return;
    case 'block':
      writePlainResponse(res, decision.status, 'Forbidden');
      return;
    case 'reject':
      // Apache would answer 400 too; closing keeps a garbage-sending client from reusing the connection.
      writePlainResponse(res, decision.status, decision.status === 501 ? 'Not implemented' : 'Bad request', { connection: 'close' });
      return;
  }
}

/**
 * Retry-After plus the IETF RateLimit-Policy/RateLimit fields
 * (draft-ietf-httpapi-ratelimit-headers-08 and later). A token bucket maps onto
 * the draft's quota model as quota = burst and window = the time the bucket
 * takes to refill from empty.
 */
export function rateLimitHeaders(bucket: BucketSpec, retryAfterMs: number): Record<string, string> {
  // Whole seconds, rounded up: rounding down would invite a retry that is refused again.
  const retryAfterSec = Math.max(1, Math.ceil(retryAfterMs / 1000));
  const name = `${bucket.rule}-${bucket.scope}`;
  const windowSec = Math.max(1, Math.ceil(bucket.burst / bucket.ratePerMs / 1000));
  return {
    'retry-after': String(retryAfterSec),
    'ratelimit-policy': `"${name}";q=${bucket.burst};w=${windowSec}`,
    ratelimit: `"${name}";r=0;t=${retryAfterSec}`,
  };
}
