import type { Ban } from '../escalation/ban.js';

/** A ban as the admin API shows it: wall-clock times, seconds left. */
export interface BanJson {
  readonly target: string;
  readonly scope: Ban['scope'];
  readonly source: Ban['source'];
  readonly reason: string;
  readonly nth: number;
  readonly dry_run: boolean;
  readonly started_at: string;
  readonly expires_at: string;
  readonly remaining_seconds: number;
}

/** Converts a ban (monotonic times) to JSON, given the clocks' current readings. */
export function banToJson(ban: Ban, nowMs: number, epochNowMs: number): BanJson {
  const toIso = (monoMs: number) => new Date(Math.round(epochNowMs + (monoMs - nowMs))).toISOString();
  return {
    target: ban.target,
    scope: ban.scope,
    source: ban.source,
    reason: ban.reason,
    nth: ban.nth,
    dry_run: ban.dryRun,
    started_at: toIso(ban.startedMs),
    expires_at: toIso(ban.expiresMs),
    remaining_seconds: Math.max(0, Math.ceil((ban.expiresMs - nowMs) / 1000)),
  };
}
