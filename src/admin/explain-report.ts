import type { BucketLevel, ClientExplanation, TargetRecord } from '../engine/client-explanation.js';
import { banToJson, type BanJson } from './ban-json.js';

/** `GET /explain/{ip}`: why a client is where it is, with wall-clock times. */
export interface ExplainReport {
  readonly client: { readonly ip: string; readonly prefix: string };
  readonly allowlisted: boolean;
  readonly never_banned: boolean;
  /** Tokens rounded down to two decimals. */
  readonly buckets: readonly BucketLevel[];
  readonly strikes: { readonly count: number; readonly threshold: number; readonly window_seconds: number } | null;
  readonly active_bans: readonly BanJson[];
  readonly history: readonly TargetReport[];
}

interface TargetReport {
  readonly target: string;
  readonly past_bans: number;
  readonly last_ban_ended_at: string | null;
  readonly next_ban: { readonly nth: number; readonly duration_seconds: number };
}

/** Converts the engine's explanation (monotonic times) to the API's JSON. */
export function explainToJson(explanation: ClientExplanation, epochNowMs: number): ExplainReport {
  const { nowMs } = explanation;
  const toIso = (monoMs: number) => new Date(Math.round(epochNowMs + (monoMs - nowMs))).toISOString();
  const target = (record: TargetRecord): TargetReport => ({
    target: record.target,
    past_bans: record.history?.bans ?? 0,
    last_ban_ended_at: record.history ? toIso(record.history.lastEndMs) : null,
    next_ban: { nth: record.nextBan.nth, duration_seconds: Math.round(record.nextBan.durationMs / 1000) },
  });
  return {
    client: { ip: explanation.client.ip, prefix: explanation.client.prefix },
    allowlisted: explanation.allowlisted,
    never_banned: explanation.neverBanned,
    // Two decimals: a bucket refills continuously and 0.37 tokens still means "refused".
    buckets: explanation.buckets.map((bucket) => ({ ...bucket, tokens: Math.floor(bucket.tokens * 100) / 100 })),
    strikes: explanation.strikes && {
      count: Math.round(explanation.strikes.count * 100) / 100,
      threshold: explanation.strikes.threshold,
      window_seconds: explanation.strikes.windowMs / 1000,
    },
    active_bans: explanation.activeBans.map((ban) => banToJson(ban, nowMs, epochNowMs)),
    history: [explanation.ip, explanation.prefix].filter((record): record is TargetRecord => record !== null).map(target),
  };
}
