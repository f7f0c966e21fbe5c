/*
 * Token-bucket arithmetic, pure: the state is (tokens, stampMs) and time is
 * passed in, so the same code runs on the proxy's monotonic clock and on a
 * replayed log's timestamps. Refill is lazy: nothing ticks, a bucket is only
 * brought up to date when a request touches it.
 */

/**
 * Tolerance when comparing token levels: 1/3 s at 3/s must refill exactly one
 * token, but floating point may land on 0.9999999999.
 */
const EPSILON = 1e-9;

/** Tokens in a bucket at `nowMs`, given its level `tokens` at `stampMs`. Never above `burst`; a clock that stands still or steps back adds nothing. */
export function refilledTokens(tokens: number, stampMs: number, nowMs: number, ratePerMs: number, burst: number): number {
  const elapsedMs = nowMs - stampMs;
  if (elapsedMs <= 0) return tokens;
  const refilled = tokens + elapsedMs * ratePerMs;
  return refilled < burst ? refilled : burst;
}

/** Whether `tokens` can pay `cost`. */
export function canPay(tokens: number, cost: number): boolean {
  return tokens + EPSILON >= cost;
}

/** Milliseconds until a bucket holding `tokens` can pay `cost`: 0 when it already can. */
export function msUntilAffordable(tokens: number, cost: number, ratePerMs: number): number {
  const missing = cost - tokens;
  return missing <= EPSILON ? 0 : missing / ratePerMs;
}
