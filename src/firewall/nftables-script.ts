/*
 * The nft batches NftablesBackend sends, rendered as text and nothing else
 * (no I/O), so that tests can read every line: the table, its sets and drop
 * rules, a commit's element statements, replaceAll's refill. The layout they
 * write and the kernel and nft facts they rely on (why a lift is `add; delete`
 * and a ban `add; delete; add`) are in nftables-backend.ts's header.
 */
import ipaddr from 'ipaddr.js';
import type { KernelBan } from './ban-backend.js';
import { validateBan, validatePort, type ValidBackendOptions, type ValidBan } from './ban-validation.js';
import { longestBans } from './kernel-ban-backend.js';
import { validateLift, type PendingChange } from './pending-bans.js';
import { MIN_PREFIX_LENGTH } from '../escalation/ban-target.js';

/** The table portcullis owns; nothing outside it is touched. */
export const NFT_TABLE = 'inet portcullis';
const CHAIN = 'prerouting';

/** The address sets, by family. */
export const NFT_ADDRESS_SETS = { 4: 'addr4', 6: 'addr6' } as const;
/** The interval sets of earlier versions, deleted by init(). */
export const NFT_LEGACY_SETS = ['net4', 'net6'] as const;
/** Names of the prefix sets: `net4_24`, `net6_64`. */
export const NFT_PREFIX_SET = /^net([46])_([0-9]{1,3})$/;

/**
 * Longest element timeout written, in seconds (365 days). nft 1.0.6 refuses
 * 999,999,999 s ("value too large") and takes 99,999,999 s; a year is well
 * inside. A longer ban is still enforced by the proxy, and replaceAll() at
 * the next start writes what remains of it.
 */
export const NFT_MAX_TIMEOUT_SEC = 365 * 24 * 3600;

/** Timeout of the throw-away element a lift adds before deleting it. */
const PLACEHOLDER_TIMEOUT = '1s';

/** What the batches of one backend need to know: its options and the prefix sets the kernel holds (each with its rule). */
export interface NftLayout {
  readonly ports: readonly number[];
  readonly maxBans: number;
  readonly prefixSets: ReadonlySet<string>;
}

/**
 * The init batch, given the names of the sets our table holds now (empty on
 * the first start): table, address sets and chain created if missing, every
 * set (re)sized, the sets of earlier versions deleted, the chain's rules
 * rewritten for the address sets and the prefix sets that exist.
 */
export function renderNftInit(options: ValidBackendOptions, existing: ReadonlySet<string> = new Set()): string {
  const layout: NftLayout = { ports: options.ports, maxBans: options.maxBans, prefixSets: new Set([...existing].filter((name) => NFT_PREFIX_SET.test(name))) };
  checkLayout(layout);
  const lines = [`add table ${NFT_TABLE}`];
  for (const family of [4, 6] as const) lines.push(addSet(NFT_ADDRESS_SETS[family], family, layout.maxBans));
  for (const name of sortedPrefixSets(layout.prefixSets)) lines.push(addSet(name, prefixSetFamily(name), layout.maxBans));
  lines.push(`add chain ${NFT_TABLE} ${CHAIN} { type filter hook prerouting priority raw; policy accept; }`, `flush chain ${NFT_TABLE} ${CHAIN}`);
  // After the flush: a set is deleted once no rule uses it.
  for (const name of NFT_LEGACY_SETS) if (existing.has(name)) lines.push(`delete set ${NFT_TABLE} ${name}`);
  lines.push(...renderRules(layout.ports, layout.prefixSets));
  return `${lines.join('\n')}\n`;
}

/**
 * The batch of one commit and the prefix sets it creates. With `present`
 * null: lifts as `add X timeout 1s; delete X` (robust to an absent X, see
 * nftables-backend.ts). With `present` (what the kernel holds): plain
 * deletes of the present lifted targets only. Bans are `add; delete; add`
 * either way, so the new timeout holds on any kernel; a ban of a prefix
 * length with no set yet creates the set and its rule first. A lift of a
 * prefix length with no set is nothing to do. Every element is validated
 * again right here; the batch is '' when there is nothing to send.
 */
export function renderNftCommit(changes: readonly PendingChange[], present: ReadonlySet<string> | null, layout: NftLayout): { batch: string; created: string[] } {
  checkLayout(layout);
  const lifts = new Map<string, ValidBan[]>();
  const bans = new Map<string, ValidBan[]>();
  const push = (groups: Map<string, ValidBan[]>, set: string, ban: ValidBan): void => {
    const group = groups.get(set);
    if (group === undefined) groups.set(set, [ban]);
    else group.push(ban);
  };
  for (const change of changes) {
    if (change.kind === 'add') {
      const ban = validateBan(change.ban);
      push(bans, setOf(ban), ban);
    } else {
      const ban = validateLift(change);
      const set = setOf(ban);
      if (ban.scope === 'prefix' && !layout.prefixSets.has(set)) continue;
      if (present === null || present.has(ban.target)) push(lifts, set, ban);
    }
  }
  const created = sortedPrefixSets([...bans.keys()].filter((set) => NFT_PREFIX_SET.test(set) && !layout.prefixSets.has(set)));
  const lines: string[] = [];
  for (const name of created) lines.push(addSet(name, prefixSetFamily(name), layout.maxBans));
  lines.push(...renderRules(layout.ports, new Set(created), { addressSets: false }));
  for (const set of [...new Set([...lifts.keys(), ...bans.keys()])].sort(compareSets)) {
    const lifted = lifts.get(set) ?? [];
    if (lifted.length > 0) {
      if (present === null) lines.push(elementStatement('add', set, lifted.map((ban) => `${elementValue(ban)} timeout ${PLACEHOLDER_TIMEOUT}`)));
      lines.push(elementStatement('delete', set, lifted.map(elementValue)));
    }
    const banned = bans.get(set) ?? [];
    if (banned.length > 0) {
      lines.push(elementStatement('add', set, banned.map(renderElement)));
      lines.push(elementStatement('delete', set, banned.map(elementValue)));
      lines.push(elementStatement('add', set, banned.map(renderElement)));
    }
  }
  return { batch: lines.length === 0 ? '' : `${lines.join('\n')}\n`, created };
}

/**
 * The batch of replaceAll, given the names of the sets our table holds now:
 * every set flushed and refilled, the prefix sets the bans need created,
 * the others deleted, the chain's rules rewritten, in one transaction.
 * Duplicate targets keep the longest timeout; nested prefixes are all kept
 * (each in the set of its length). Returns the prefix sets that exist after it.
 */
export function renderNftReplaceAll(bans: readonly KernelBan[], options: ValidBackendOptions, existing: ReadonlySet<string>): { batch: string; prefixSets: string[] } {
  const bySet = new Map<string, ValidBan[]>();
  for (const ban of longestBans(bans)) {
    const set = setOf(ban);
    const elements = bySet.get(set);
    if (elements === undefined) bySet.set(set, [ban]);
    else elements.push(ban);
  }
  const prefixSets = sortedPrefixSets([...bySet.keys()].filter((set) => NFT_PREFIX_SET.test(set)));
  const layout: NftLayout = { ports: options.ports, maxBans: options.maxBans, prefixSets: new Set(prefixSets) };
  checkLayout(layout);
  const lines = [`flush chain ${NFT_TABLE} ${CHAIN}`];
  for (const family of [4, 6] as const) lines.push(`flush set ${NFT_TABLE} ${NFT_ADDRESS_SETS[family]}`);
  for (const name of sortedPrefixSets([...existing].filter((name) => NFT_PREFIX_SET.test(name)))) {
    if (!layout.prefixSets.has(name)) lines.push(`delete set ${NFT_TABLE} ${name}`);
  }
  for (const name of NFT_LEGACY_SETS) if (existing.has(name)) lines.push(`delete set ${NFT_TABLE} ${name}`);
  for (const name of prefixSets) lines.push(existing.has(name) ? `flush set ${NFT_TABLE} ${name}` : addSet(name, prefixSetFamily(name), layout.maxBans));
  lines.push(...renderRules(layout.ports, layout.prefixSets));
  for (const [set, elements] of [...bySet].sort(([a], [b]) => compareSets(a, b))) {
    if (elements.length > 0) lines.push(elementStatement('add', set, elements.map(renderElement)));
  }
  return { batch: `${lines.join('\n')}\n`, prefixSets };
}

/** The set of a validated ban: `addr4`/`addr6` for an address, `net4_24`-style for a prefix. */
function setOf(ban: ValidBan): string {
  return ban.scope === 'ip' ? NFT_ADDRESS_SETS[ban.family] : `net${ban.family}_${ban.prefixLength}`;
}

function prefixSetFamily(name: string): 4 | 6 {
  return NFT_PREFIX_SET.exec(name)?.[1] === '4' ? 4 : 6;
}

function prefixSetLength(name: string): number {
  return Number(NFT_PREFIX_SET.exec(name)?.[2]);
}

/** IPv4 before IPv6, then by length: the order rules and statements are written in. */
function compareSets(a: string, b: string): number {
  const rank = (name: string): number => (name === NFT_ADDRESS_SETS[4] ? 0 : name === NFT_ADDRESS_SETS[6] ? 1000 : prefixSetFamily(name) === 4 ? prefixSetLength(name) : 1000 + prefixSetLength(name));
  return rank(a) - rank(b);
}

function sortedPrefixSets(names: Iterable<string>): string[] {
  return [...names].sort(compareSets);
}

/** Checks ports, maxBans and every prefix set name (family 4 or 6, a length the validator accepts) before any of them is written. */
function checkLayout(layout: NftLayout): void {
  for (const port of layout.ports) validatePort(port);
  if (!Number.isInteger(layout.maxBans) || layout.maxBans < 1) throw new RangeError(`maxBans must be a positive whole number, got ${layout.maxBans}`);
  for (const name of layout.prefixSets) {
    const match = NFT_PREFIX_SET.exec(name);
    const length = Number(match?.[2]);
    if (match === null || length < MIN_PREFIX_LENGTH[prefixSetFamily(name)] || length > (match[1] === '4' ? 32 : 128)) throw new RangeError(`not a prefix set name: ${JSON.stringify(name)}`);
  }
}

function addSet(name: string, family: 4 | 6, maxBans: number): string {
  return `add set ${NFT_TABLE} ${name} { type ${family === 4 ? 'ipv4_addr' : 'ipv6_addr'}; flags timeout; size ${maxBans}; }`;
}

/** The drop rules: one per address set (unless left out) and one per prefix set, with the source masked to the set's length. */
function renderRules(ports: readonly number[], prefixSets: ReadonlySet<string>, { addressSets = true } = {}): string[] {
  // Port first: a packet to another port costs one comparison, not a set lookup.
  const match = `add rule ${NFT_TABLE} ${CHAIN} tcp dport { ${ports.join(', ')} }`;
  const rules: string[] = [];
  const names = [...(addressSets ? [NFT_ADDRESS_SETS[4], NFT_ADDRESS_SETS[6]] : []), ...prefixSets].sort(compareSets);
  for (const name of names) {
    if (name === NFT_ADDRESS_SETS[4]) rules.push(`${match} ip saddr @${name} counter drop`);
    else if (name === NFT_ADDRESS_SETS[6]) rules.push(`${match} ip6 saddr @${name} counter drop`);
    else {
      const length = prefixSetLength(name);
      if (prefixSetFamily(name) === 4) rules.push(`${match} ip saddr & ${ipaddr.IPv4.subnetMaskFromPrefixLength(length).toString()} @${name} counter drop`);
      else rules.push(`${match} ip6 saddr & ${ipaddr.IPv6.subnetMaskFromPrefixLength(length).toRFC5952String()} @${name} counter drop`);
    }
  }
  return rules;
}

/** What an element of the ban's set is: the address, or the network address of a prefix. */
function elementValue(ban: ValidBan): string {
  return ban.address;
}

function renderElement(ban: ValidBan): string {
  return `${elementValue(ban)} timeout ${Math.min(ban.timeoutSec, NFT_MAX_TIMEOUT_SEC)}s`;
}

function elementStatement(verb: 'add' | 'delete', set: string, elements: readonly string[]): string {
  return `${verb} element ${NFT_TABLE} ${set} { ${elements.join(', ')} }`;
}
