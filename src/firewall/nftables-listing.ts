/*
 * What `nft -j list table inet portcullis` says our sets hold, parsed: the
 * backend reads it to learn its prefix sets, check their sizes and list
 * the bans the kernel enforces.
 */
import { canonicalTarget } from './ban-validation.js';
import { NFT_ADDRESS_SETS, NFT_LEGACY_SETS, NFT_PREFIX_SET } from './nftables-script.js';

/** One set of the table as `nft -j list table` shows it. */
export interface NftSetListing {
  /** `addr4`, `addr6`, a prefix set (`net4_24`) or a set of an earlier version (`net4`). */
  readonly name: string;
  /** Absent when the set has no size (unbounded). */
  readonly size: number | undefined;
  /** Canonical targets (prefixes always with their length); ranges nft made of other elements as `FIRST-LAST`. */
  readonly targets: string[];
}

/** Parses `nft -j [-t] list table inet portcullis`: our sets, others ignored. Throws on output that is not nft JSON. */
export function parseNftSets(json: string): NftSetListing[] {
  const document = JSON.parse(json) as { nftables?: unknown };
  if (!Array.isArray(document.nftables)) throw new Error('nft -j printed JSON without an "nftables" array');
  const sets: NftSetListing[] = [];
  for (const item of document.nftables as Array<Record<string, unknown>>) {
    const set = item.set as { name?: unknown; size?: unknown; elem?: unknown } | undefined;
    if (set === undefined || typeof set.name !== 'string') continue;
    const name = set.name;
    const prefix = NFT_PREFIX_SET.exec(name);
    const isAddressSet = name === NFT_ADDRESS_SETS[4] || name === NFT_ADDRESS_SETS[6];
    const isLegacy = (NFT_LEGACY_SETS as readonly string[]).includes(name);
    if (prefix === null && !isAddressSet && !isLegacy) continue;
    const targets: string[] = [];
    for (const entry of Array.isArray(set.elem) ? (set.elem as unknown[]) : []) {
      const target = prefix === null ? elementTarget(entry, isAddressSet ? 'ip' : 'prefix') : prefixElementTarget(entry, Number(prefix[2]));
      if (target !== null) targets.push(target);
    }
    sets.push({ name, size: typeof set.size === 'number' ? set.size : undefined, targets });
  }
  return sets;
}

function elementValueOf(entry: unknown): unknown {
  // An element with options is { elem: { val, timeout, expires } }; without, the bare value.
  return typeof entry === 'object' && entry !== null && 'elem' in entry ? (entry as { elem: { val?: unknown } }).elem.val : entry;
}

function elementTarget(entry: unknown, scope: 'ip' | 'prefix'): string | null {
  const value = elementValueOf(entry);
  if (typeof value === 'string') return canonicalTarget(value, scope);
  if (typeof value === 'object' && value !== null) {
    const prefix = (value as { prefix?: { addr?: unknown; len?: unknown } }).prefix;
    if (prefix !== undefined) return canonicalTarget(`${String(prefix.addr)}/${String(prefix.len)}`, scope);
    const range = (value as { range?: unknown }).range;
    if (Array.isArray(range)) return `${String(range[0])}-${String(range[1])}`;
  }
  return null;
}

/** A prefix set holds network addresses; the set's name gives the length. */
function prefixElementTarget(entry: unknown, length: number): string | null {
  const value = elementValueOf(entry);
  return typeof value === 'string' ? canonicalTarget(`${value}/${length}`, 'prefix') : null;
}
