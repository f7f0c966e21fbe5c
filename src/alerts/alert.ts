import type { Ban, BanScope, BanSource } from '../escalation/ban.js';
import type { AttackEvent } from './attack-detector.js';

/**
 * The payload version. Bumped only when a field is removed or changes
 * meaning; new fields may appear within a version, so receivers must ignore
 * fields they do not know.
 */
export const ALERT_VERSION = 1;

/** What every alert starts with. */
interface AlertEnvelope {
  /** Always `portcullis`, so a receiver shared with other tools can route on it. */
  readonly source: 'portcullis';
  readonly version: typeof ALERT_VERSION;
  /** Wall-clock time the alert was raised, ISO-8601 UTC (`2026-11-25T10:15:00.000Z`). */
  readonly at: string;
  /** `os.hostname()` of the proxy, to tell several proxies apart. */
  readonly host: string;
  /** One line for people (chat, pager), e.g. `web1: banned 192.0.2.7 for 10m (2nd ban): 30 strikes in 60s`. */
  readonly summary: string;
}

/**
 * A ban was recorded (dry-run bans too, marked `dry_run`). Its details sit
 * under `ban` rather than at the top level because the ban's own `source`
 * (strikes, prefix, manual) would collide with the envelope's.
 */
export interface BanAlert extends AlertEnvelope {
  readonly event: 'ban';
  readonly ban: {
    /** Address (`192.0.2.7`) or network (`192.0.2.0/24`). */
    readonly target: string;
    readonly scope: BanScope;
    readonly reason: string;
    readonly source: BanSource;
    readonly duration_seconds: number;
    /** ISO-8601 UTC. */
    readonly expires_at: string;
    /** 1 for a first ban, 2 for the next within `forget_after`, and so on. */
    readonly nth: number;
    /** Recorded but not enforced (`escalation.dry_run`). */
    readonly dry_run: boolean;
  };
}

/** The refused rate reached `alerts.attack_threshold`, or has stayed below it for a minute since. */
export interface AttackAlert extends AlertEnvelope {
  readonly event: 'attack_started' | 'attack_ended';
  readonly attack: {
    /** Refused requests per second, averaged over 10 s, when the alert was raised. */
    readonly refused_per_second: number;
    readonly threshold: number;
    /** attack_ended only: the highest averaged rate seen. */
    readonly peak_refused_per_second?: number;
    /** attack_ended only: from the start until the rate fell below the threshold for good. */
    readonly duration_seconds?: number;
  };
}

/** Any alert portcullis sends. Receivers switch on `event`. */
export type Alert = BanAlert | AttackAlert;

/** The events alerts are sent for; a closed set, so it can label metrics. */
export const ALERT_EVENTS = ['ban', 'attack_started', 'attack_ended'] as const;
export type AlertEvent = (typeof ALERT_EVENTS)[number];

/** Where and when an alert is raised. */
export interface AlertOrigin {
  /** Wall-clock milliseconds since the epoch, now. */
  readonly nowEpochMs: number;
  readonly host: string;
}

/**
 * The alert for a recorded ban. `toEpochMs` turns the ban's monotonic times
 * into wall-clock milliseconds (the ledger never holds wall times, so a clock
 * jump cannot shorten a ban).
 */
export function createBanAlert(ban: Ban, toEpochMs: (monotonicMs: number) => number, origin: AlertOrigin): BanAlert {
  const durationSeconds = Math.round((ban.expiresMs - ban.startedMs) / 1000);
  const what = ban.scope === 'prefix' ? `network ${ban.target}` : ban.target;
  const verb = ban.dryRun ? 'would ban (dry run)' : 'banned';
  const nth = ban.nth > 1 ? ` (${ordinal(ban.nth)} ban)` : '';
  return {
    source: 'portcullis',
    version: ALERT_VERSION,
    event: 'ban',
    at: new Date(origin.nowEpochMs).toISOString(),
    host: origin.host,
    summary: `${origin.host}: ${verb} ${what} for ${formatSeconds(durationSeconds)}${nth}: ${ban.reason}`,
    ban: {
      target: ban.target,
      scope: ban.scope,
      reason: ban.reason,
      source: ban.source,
      duration_seconds: durationSeconds,
      expires_at: new Date(Math.round(toEpochMs(ban.expiresMs))).toISOString(),
      nth: ban.nth,
      dry_run: ban.dryRun,
    },
  };
}

/** The alert for an attack starting or ending. Rates are rounded to 0.1 request per second. */
export function createAttackAlert(event: AttackEvent, origin: AlertOrigin): AttackAlert {
  const rate = roundRate(event.ratePerSec);
  const envelope = { source: 'portcullis', version: ALERT_VERSION, at: new Date(origin.nowEpochMs).toISOString(), host: origin.host } as const;
  if (event.kind === 'attack_started') {
    return {
      ...envelope,
      event: 'attack_started',
      summary: `${origin.host}: under attack: ${rate} refused requests/s (threshold ${event.threshold}/s)`,
      attack: { refused_per_second: rate, threshold: event.threshold },
    };
  }
  const peak = roundRate(event.peakRatePerSec);
  const durationSeconds = Math.round(event.durationMs / 1000);
  return {
    ...envelope,
    event: 'attack_ended',
    summary: `${origin.host}: attack over after ${formatSeconds(durationSeconds)}, peak ${peak} refused requests/s`,
    attack: { refused_per_second: rate, threshold: event.threshold, peak_refused_per_second: peak, duration_seconds: durationSeconds },
  };
}

function roundRate(ratePerSec: number): number {
  return Math.round(ratePerSec * 10) / 10;
}

/** `90` → `1m30s`, `86400` → `1d`: short enough for a chat line, exact to the second. */
function formatSeconds(totalSeconds: number): string {
  if (totalSeconds <= 0) return '0s';
  let rest = totalSeconds;
  let text = '';
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      text += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return text;
}

function ordinal(n: number): string {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
}
