/** What a ban covers: one address, or a whole prefix (/24, /64, or any CIDR banned by hand). */
export type BanScope = 'ip' | 'prefix';

/** Why a ban exists. */
export type BanSource = 'strikes' | 'prefix' | 'manual';

/**
 * One ban. Times are on the engine's monotonic clock (milliseconds); they are
 * turned into wall-clock times only where a person or a file needs them.
 */
export interface Ban {
  /** Canonical address (`192.0.2.7`) or network CIDR (`192.0.2.0/24`). */
  readonly target: string;
  readonly scope: BanScope;
  readonly family: 4 | 6;
  /** For an address ban: the prefix the address belongs to, for prefix escalation. */
  readonly prefix: string | null;
  readonly source: BanSource;
  /** For people: why, e.g. `30 strikes in 60s (last: rule write)`. */
  readonly reason: string;
  readonly startedMs: number;
  readonly expiresMs: number;
  /** 1 for a first ban, 2 for the next within `forget_after`, and so on. */
  readonly nth: number;
  /** Recorded and reported but not enforced (`escalation.dry_run`). */
  readonly dryRun: boolean;
}

/** What the ledger remembers of past bans of one target, for growing ban times. */
export interface BanHistory {
  /** Bans counted toward the next one's length. */
  readonly bans: number;
  /** When the latest ban was due to end (monotonic ms). */
  readonly lastEndMs: number;
}
