import type { BanHistory } from './ban.js';

/** The ban-length settings of `escalation`. */
export interface BanDurationPolicy {
  readonly banMs: number;
  readonly factor: number;
  readonly maxBanMs: number;
  readonly forgetAfterMs: number;
}

/**
 * Which ban this would be for a target with `history`: 1 when it has none, or
 * its last ban ended more than `forgetAfterMs` ago (a reformed address starts
 * over, as with fail2ban's bantime.increment); otherwise one more than before.
 */
export function nextBanNumber(history: BanHistory | undefined, nowMs: number, policy: BanDurationPolicy): number {
  if (history === undefined || nowMs - history.lastEndMs > policy.forgetAfterMs) return 1;
  return history.bans + 1;
}

/** Length of the `nth` ban: `banMs × factor^(nth−1)`, capped at `maxBanMs`. */
export function banDurationMs(nth: number, policy: BanDurationPolicy): number {
  // Math.pow overflows to Infinity for large nth, which the cap then absorbs.
  return Math.min(policy.maxBanMs, policy.banMs * policy.factor ** (nth - 1));
}
