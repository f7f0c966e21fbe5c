import ipaddr from 'ipaddr.js';
import { makeClientKey, type PrefixLengths } from '../identity/client-key.js';
import type { Ban } from './ban.js';
import type { BanLedger } from './ban-ledger.js';
import type { Escalator } from './escalator.js';

/** What an operator asked to ban, already validated and canonical. */
export interface ManualBanRequest {
  readonly target: string;
  readonly scope: Ban['scope'];
  readonly family: 4 | 6;
  /** Null: as long as the escalation policy would make this target's next ban. */
  readonly durationMs: number | null;
  readonly reason: string;
}

export type ManualBanOutcome =
  | { readonly ok: true; readonly ban: Ban }
  /** The target is (or covers) an allowlisted address, a trusted proxy or the upstream. */
  | { readonly ok: false; readonly why: 'protected' }
  /** escalation.max_bans bans are active. */
  | { readonly ok: false; readonly why: 'full' };

/**
 * Bans a target by hand. It counts in the target's history like any ban (so
 * the next automatic one is longer), and it is enforced even in dry run: an
 * operator who bans by hand means it. Never-ban addresses stay unbannable.
 */
export function banByHand(request: ManualBanRequest, parts: { ledger: BanLedger; escalator: Escalator; prefix: PrefixLengths }, nowMs: number): ManualBanOutcome {
  const { ledger, escalator } = parts;
  const protectedTarget = request.scope === 'ip' ? escalator.protects(ipaddr.process(request.target)) : escalator.overlapsProtected(request.target);
  if (protectedTarget) return { ok: false, why: 'protected' };
  const next = escalator.nextBan(request.target, nowMs);
  const ban: Ban = {
    target: request.target,
    scope: request.scope,
    family: request.family,
    prefix: request.scope === 'ip' ? makeClientKey(ipaddr.process(request.target), parts.prefix).prefix : null,
    source: 'manual',
    reason: request.reason,
    startedMs: nowMs,
    expiresMs: nowMs + (request.durationMs ?? next.durationMs),
    nth: next.nth,
    dryRun: false,
  };
  return ledger.add(ban) ? { ok: true, ban } : { ok: false, why: 'full' };
}
