const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;

/** What a duration looks like, for the policy's JSON Schema (editors check it as you type). */
export const DURATION_PATTERN = DURATION.source;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;

/**
 * Parses a duration such as `500ms`, `2s`, `10m`, `1h30m`, `7d` into milliseconds.
 * A unit is mandatory: a bare `2` is refused rather than guessed (seconds? ms?),
 * since guessing is exactly the silent default portcullis exists to avoid.
 * Returns null when the text is not a duration.
 */
export function parseDurationMs(text: string): number | null {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) return null;
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) {
    total += Number(amount) * (UNIT_MS[unit as string] as number);
  }
  return total;
}

/** Formats milliseconds back into the largest exact unit (`120000` → `2m`), for messages and docs. */
export function formatDurationMs(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit] as number;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
