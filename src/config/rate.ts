/** A refill rate, kept with the text it was written as so messages and headers can quote it. */
export interface Rate {
  /** Tokens added per millisecond. */
  readonly perMs: number;
  /** As written in the policy, e.g. `20/s`. */
  readonly text: string;
}

const PERIOD_MS: Readonly<Record<string, number>> = {
  s: 1_000,
  sec: 1_000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  hour: 3_600_000,
  d: 86_400_000,
  day: 86_400_000,
};

const RATE = /^(\d+(?:\.\d+)?)\s*\/\s*([a-z]+)$/;

/** What a rate looks like, for the policy's JSON Schema: the amount and one of the periods parseRate knows. */
export const RATE_PATTERN = `^\\d+(?:\\.\\d+)?\\s*/\\s*(?:${Object.keys(PERIOD_MS).join('|')})$`;

/**
 * Parses `20/s`, `300/min`, `5/h`, `0.5/s` into a Rate. Returns null for anything
 * else (`20 per second`, `20`, `0/s`): a rate of zero would refuse everything,
 * which is what `block` is for.
 */
export function parseRate(text: string): Rate | null {
  const match = RATE.exec(text.trim());
  if (!match) return null;
  const amount = Number(match[1]);
  const periodMs = PERIOD_MS[match[2] as string];
  if (periodMs === undefined || !(amount > 0)) return null;
  return { perMs: amount / periodMs, text: text.trim() };
}
