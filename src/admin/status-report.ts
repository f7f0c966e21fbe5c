import type { BanLedger } from '../escalation/ban-ledger.js';
import type { DecisionRates } from '../metrics/decision-rates.js';
import type { SiteDecisionRates } from '../metrics/site-decision-rates.js';
import type { RequestOutcome } from '../metrics/proxy-metrics.js';
import type { Offender, RecentOffenders } from '../metrics/recent-offenders.js';
import { banToJson, type BanJson } from './ban-json.js';

/** Seconds the rates in `status` are averaged over. */
export const STATUS_RATE_WINDOW_S = 10;
const TOP_N = 10;

/** `GET /status`: the one-screen summary `portcullis status` prints. */
export interface StatusReport {
  readonly uptime_seconds: number;
  readonly policy: { readonly file: string; readonly loaded_at: string; readonly last_reload_ok: boolean };
  readonly rates: { readonly window_seconds: number; readonly per_second: Record<RequestOutcome, number> };
  /** The same rates per site (`sites:` in the policy); absent when the policy has none. */
  readonly rates_by_site?: Record<string, Record<RequestOutcome, number>>;
  readonly upstream: { readonly in_flight: number; readonly max: number; readonly queued: number; readonly queue_max: number };
  readonly tracked_clients: Record<string, number>;
  readonly top_refused_addresses: readonly Offender[];
  readonly top_refused_prefixes: readonly Offender[];
  readonly bans: {
    readonly active: number;
    readonly by_scope: { readonly ip: number; readonly prefix: number };
    readonly dry_run: number;
    readonly firewall: { readonly configured: string; readonly active: string; readonly ok: boolean; readonly problem: string | null };
    /** The most recent bans first. */
    readonly latest: readonly BanJson[];
  };
}

/** What the status report is gathered from. */
export interface StatusSources {
  readonly startedMs: number;
  readonly rates: DecisionRates;
  /** Rates per site; absent: the policy has no sites. */
  readonly siteRates?: SiteDecisionRates | undefined;
  readonly offenders: RecentOffenders;
  readonly ledger: BanLedger;
  upstream(): StatusReport['upstream'];
  trackedClients(): Record<string, number>;
  policy(): StatusReport['policy'];
  firewall(): StatusReport['bans']['firewall'];
}

/** Builds the status report at `nowMs` (monotonic) / `epochNowMs` (wall). */
export function buildStatusReport(sources: StatusSources, nowMs: number, epochNowMs: number): StatusReport {
  const active = sources.ledger.active().filter((ban) => ban.expiresMs > nowMs);
  const enforced = active.filter((ban) => !ban.dryRun);
  const perSecond = sources.rates.perSecond(STATUS_RATE_WINDOW_S, nowMs);
  return {
    uptime_seconds: Math.round((nowMs - sources.startedMs) / 1000),
    policy: sources.policy(),
    rates: {
      window_seconds: STATUS_RATE_WINDOW_S,
      per_second: rounded(perSecond),
    },
    ...(sources.siteRates === undefined ? {} : { rates_by_site: Object.fromEntries(Object.entries(sources.siteRates.perSecond(STATUS_RATE_WINDOW_S, nowMs)).map(([site, rates]) => [site, rounded(rates)])) }),
    upstream: sources.upstream(),
    tracked_clients: sources.trackedClients(),
    top_refused_addresses: sources.offenders.topAddresses(TOP_N, nowMs),
    top_refused_prefixes: sources.offenders.topPrefixes(TOP_N, nowMs),
    bans: {
      active: enforced.length,
      by_scope: { ip: enforced.filter((ban) => ban.scope === 'ip').length, prefix: enforced.filter((ban) => ban.scope === 'prefix').length },
      dry_run: active.length - enforced.length,
      firewall: sources.firewall(),
      latest: [...active].sort((a, b) => b.startedMs - a.startedMs).slice(0, TOP_N).map((ban) => banToJson(ban, nowMs, epochNowMs)),
    },
  };
}

/** Rates to one decimal, as `status` shows them. */
function rounded(perSecond: Record<RequestOutcome, number>): Record<RequestOutcome, number> {
  return Object.fromEntries(Object.entries(perSecond).map(([outcome, rate]) => [outcome, Math.round(rate * 10) / 10])) as Record<RequestOutcome, number>;
}
