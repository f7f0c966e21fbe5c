const UNITS = [
  ['d', 86_400],
  ['h', 3_600],
  ['m', 60],
  ['s', 1],
] as const;

/**
 * Formats seconds for people, in at most two units, the second only when it
 * is not zero: `45s`, `9m 12s`, `2h`, `1h 30m`, `3d 4h`. Rounded to whole
 * seconds; anything below half a second is `0s`. Finer units than the two
 * largest are dropped (`1h 0m 30s` is `1h`): a ban's remaining time to the
 * second only matters in its last minutes.
 */
export function formatSeconds(seconds: number): string {
  let rest = Math.max(0, Math.round(seconds));
  if (rest === 0) return '0s';
  const index = UNITS.findIndex(([, size]) => rest >= size);
  const [bigUnit, bigSize] = UNITS[index] as (typeof UNITS)[number];
  const big = Math.floor(rest / bigSize);
  rest -= big * bigSize;
  const next = UNITS[index + 1];
  if (next === undefined) return `${big}${bigUnit}`;
  const small = Math.floor(rest / next[1]);
  return small === 0 ? `${big}${bigUnit}` : `${big}${bigUnit} ${small}${next[0]}`;
}

/** `2m ago` / `in 5m` for a wall-clock time (ISO text) seen from `epochNowMs`; `-` for null, the text itself when unparsable. */
export function formatRelative(iso: string | null, epochNowMs: number): string {
  if (iso === null) return '-';
  const atMs = Date.parse(iso);
  if (Number.isNaN(atMs)) return iso;
  const deltaS = (atMs - epochNowMs) / 1000;
  if (Math.abs(deltaS) < 1) return 'just now';
  return deltaS < 0 ? `${formatSeconds(-deltaS)} ago` : `in ${formatSeconds(deltaS)}`;
}
