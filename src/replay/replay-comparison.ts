import type { Offender, ReplayResult } from './replay-session.js';

/** What a policy did to one client over the whole log. */
export interface ClientOutcome {
  readonly kind: 'banned' | 'refused' | 'untouched';
  readonly refused: number;
  readonly bannedAtMs: number | null;
  readonly banMs: number | null;
}

/** A client (or prefix) the two policies treated differently. */
export interface OutcomeDifference {
  readonly target: string;
  readonly policy: ClientOutcome;
  readonly against: ClientOutcome;
}

const UNTOUCHED: ClientOutcome = { kind: 'untouched', refused: 0, bannedAtMs: null, banMs: null };

/**
 * The clients whose outcome differs between two replays of the same log:
 * banned by one and not the other, or refused by one and untouched by the
 * other. A client refused by both, a different number of times, is the same
 * outcome (the counts are in each replay's own report). Bans first, then by
 * the larger refusal count.
 */
export function compareReplays(policy: ReplayResult, against: ReplayResult): OutcomeDifference[] {
  const mine = new Map(policy.offenders.map((offender) => [offender.target, outcomeOf(offender)]));
  const theirs = new Map(against.offenders.map((offender) => [offender.target, outcomeOf(offender)]));
  const differences: OutcomeDifference[] = [];
  for (const target of new Set([...mine.keys(), ...theirs.keys()])) {
    const a = mine.get(target) ?? UNTOUCHED;
    const b = theirs.get(target) ?? UNTOUCHED;
    if (a.kind !== b.kind) differences.push({ target, policy: a, against: b });
  }
  const weight = (difference: OutcomeDifference): number =>
    (difference.policy.kind === 'banned' || difference.against.kind === 'banned' ? 1e12 : 0) + Math.max(difference.policy.refused, difference.against.refused);
  return differences.sort((x, y) => weight(y) - weight(x));
}

function outcomeOf(offender: Offender): ClientOutcome {
  return { kind: offender.bannedAtMs !== null ? 'banned' : offender.refused > 0 ? 'refused' : 'untouched', refused: offender.refused, bannedAtMs: offender.bannedAtMs, banMs: offender.banMs };
}
