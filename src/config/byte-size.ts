const UNIT_BYTES: Readonly<Record<string, number>> = {
  B: 1,
  KB: 1_000,
  MB: 1_000_000,
  GB: 1_000_000_000,
  KiB: 1_024,
  MiB: 1_048_576,
  GiB: 1_073_741_824,
};

const SIZE = /^(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)$/;

/** What a size looks like, for the policy's JSON Schema. */
export const SIZE_PATTERN = SIZE.source;

/**
 * Parses `64MiB`, `10MB`, `512KiB`, `100B` into bytes. The unit is mandatory and
 * case-exact (`mb` could mean megabits), decimal (KB = 1000) and binary (KiB = 1024)
 * are both accepted. Returns null for anything else.
 */
export function parseByteSize(text: string): number | null {
  const match = SIZE.exec(text.trim());
  if (!match) return null;
  return Number(match[1]) * (UNIT_BYTES[match[2] as string] as number);
}
