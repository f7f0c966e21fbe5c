/*
 * Bans as nftables set elements with kernel timeouts, in portcullis's own
 * table `inet portcullis`:
 *
 *   set addr4    { type ipv4_addr; flags timeout; size MAX; }   banned addresses
 *   set addr6    { type ipv6_addr; flags timeout; size MAX; }
 *   set net4_24  { type ipv4_addr; flags timeout; size MAX; }   banned /24 networks
 *   set net6_64  { type ipv6_addr; flags timeout; size MAX; }   (one set per prefix length in use)
 *   chain prerouting { type filter hook prerouting priority raw; policy accept;
 *     tcp dport { PORTS } ip saddr @addr4 counter drop
 *     tcp dport { PORTS } ip saddr & 255.255.255.0 @net4_24 counter drop
 *     ... }
 *
 * - One plain hash set per prefix length, holding network addresses, looked
 *   up with the source masked to that length. Prefixes of one length never
 *   overlap, so nested bans (a manual /16 while a /24 inside it is banned)
 *   are simply two elements in two sets, each with its own timeout: lifting
 *   or expiring one leaves the other in force. One interval set for every
 *   length cannot do this: the kernel refuses an element that overlaps
 *   another ("interval overlaps with an existing one"), and `auto-merge`
 *   would fuse the two into one element with one timeout.
 * - A prefix set and its rule are created by the first batch that bans a
 *   prefix of that length, and removed by replaceAll() when no ban needs
 *   them: a packet pays one masked lookup per length in use (typically the
 *   two of `identity.prefix`), not one per possible length (25 + 113).
 * - Addresses live apart from prefixes, so a /32 prefix ban and an address
 *   ban stay apart in list().
 * - `size` is always written: a set without one is unbounded, and sets that
 *   fill from the packet path default to 65,536 — a silent cap either way.
 * - Priority raw (-300) is before conntrack (-200): every packet of a banned
 *   source is dropped, established keep-alive floods included, and it never
 *   costs a conntrack entry.
 * - Earlier versions kept prefixes in two interval sets `net4`/`net6`; init()
 *   deletes them. Their bans are written again by replaceAll(), which the
 *   enforcer runs right after init() with every active ban.
 *
 * Kernel/tool facts this file relies on (nft 1.0.6, Linux 6.x, checked in
 * test/system/firewall/nftables-backend.test.ts):
 * - A batch (`nft -f`) is one transaction: one failing command aborts it all.
 *   commit() then splits the batch and retries (batch-splitting.ts).
 * - `delete element` of an absent element fails (ENOENT), and an element whose
 *   timeout has passed is absent even before the kernel's garbage collection.
 *   nft 1.0.6 has no `destroy element`. So a lift is written as `add element X
 *   timeout 1s; delete element X`: the add makes X exist whatever its state,
 *   the delete removes it, within one transaction.
 * - That add fails when the set is full (ENFILE, "Too many open files in
 *   system") and X is absent; then the batch is sent again with a plain
 *   delete of only the targets `nft -j list` shows present (one retry: a ban
 *   expiring in between fails it, and the split that follows retries it).
 * - `add element` of an existing element updates its timeout only on recent
 *   kernels (6.18 does; older ones keep the old timeout), so a ban is written
 *   `add; delete; add` to set its timeout on every kernel.
 * - `flush chain` then `delete set` of a set its rules used works within one
 *   transaction.
 * - Expired elements still count towards `size` until garbage collection.
 */
import ipaddr from 'ipaddr.js';
import type { KernelBan } from './ban-backend.js';
import { canonicalTarget, validateBan, validatePort, type ValidBackendOptions, type ValidBan } from './ban-validation.js';
import { unavailableWhenUnprivileged } from './command-runner.js';
import { KernelBanBackend, longestBans } from './kernel-ban-backend.js';
import { validateLift, type PendingChange } from './pending-bans.js';
import { FirewallCommandError } from '../core/errors.js';
import { MIN_PREFIX_LENGTH } from '../escalation/ban-target.js';

/** The table portcullis owns; nothing outside it is touched. */
export const NFT_TABLE = 'inet portcullis';
const CHAIN = 'prerouting';

/** The address sets, by family. */
export const NFT_ADDRESS_SETS = { 4: 'addr4', 6: 'addr6' } as const;
/** The interval sets of earlier versions, deleted by init(). */
export const NFT_LEGACY_SETS = ['net4', 'net6'] as const;
/** Names of the prefix sets: `net4_24`, `net6_64`. */
const PREFIX_SET = /^net([46])_([0-9]{1,3})$/;

/**
 * Longest element timeout written, in seconds (365 days). nft 1.0.6 refuses
 * 999,999,999 s ("value too large") and takes 99,999,999 s; a year is well
 * inside. A longer ban is still enforced by the proxy, and replaceAll() at
 * the next start writes what remains of it.
 */
export const NFT_MAX_TIMEOUT_SEC = 365 * 24 * 3600;

/** Timeout of the throw-away element a lift adds before deleting it. */
const PLACEHOLDER_TIMEOUT = '1s';

/** nft's JSON costs ~70–90 bytes per element; allow 128, and stay under V8's largest string (~512 MiB). */
const LIST_BYTES_PER_ELEMENT = 128;
const LIST_MAX_BYTES = 500 * 1024 * 1024;

/** What the batches of one backend need to know: its options and the prefix sets the kernel holds (each with its rule). */
export interface NftLayout {
  readonly ports: readonly number[];
  readonly maxBans: number;
  readonly prefixSets: ReadonlySet<string>;
}

/** Bans as nftables set elements (see the header); the queue, sequence and batch splitting are KernelBanBackend's. */
export class NftablesBackend extends KernelBanBackend {
  readonly name = 'nftables';
  /** Prefix sets the kernel holds, each with its rule; null until read. */
  #prefixSets: Set<string> | null = null;

  /**
   * Creates the table, address sets and chain if missing, resizes every set
   * to maxBans, deletes the interval sets of earlier versions and rewrites
   * the chain's rules for the current ports, in one transaction. Elements
   * survive: a restart keeps every ban. Then checks that each set's size is
   * maxBans (a kernel that cannot resize a set keeps the old size: that is
   * an error).
   */
  protected async setUp(): Promise<void> {
    let existing: Set<string>;
    try {
      existing = await this.#setNames({ tableMayBeMissing: true });
      await this.#nft(renderNftInit(this.options, existing));
    } catch (error) {
      throw unavailableWhenUnprivileged(error);
    }
    const args = ['-j', '-t', 'list', 'table', ...NFT_TABLE.split(' ')];
    const { stdout } = await this.runner.run('nft', args);
    const sets = parseNftSets(stdout);
    this.#prefixSets = new Set(sets.map((set) => set.name).filter((name) => PREFIX_SET.test(name)));
    for (const set of sets) {
      if (set.size !== this.options.maxBans) {
        throw new FirewallCommandError(
          'nft',
          args,
          `set ${set.name} has size ${set.size ?? 'unlimited'}, but maxBans is ${this.options.maxBans} and this kernel did not resize it; ` +
            `run \`nft delete table ${NFT_TABLE}\` (the bans are restored at start) and start again`,
        );
      }
    }
  }

  /** Reads the prefix sets the kernel holds, the first time: a commit creates the set of a prefix length not banned before. */
  protected override async beforeCommit(): Promise<void> {
    this.#prefixSets ??= new Set([...(await this.#setNames({ tableMayBeMissing: false }))].filter((name) => PREFIX_SET.test(name)));
  }

  /**
   * One transaction of `part` (nothing is applied when it fails, so a part
   * may be applied again); on failure with lifts, one retry with plain
   * deletes of the present lifted targets (see the header).
   */
  protected async applyPart(part: readonly PendingChange[]): Promise<void> {
    const layout: NftLayout = { ...this.options, prefixSets: this.#prefixSets ?? new Set() };
    let rendered = renderNftCommit(part, null, layout);
    try {
      if (rendered.batch !== '') await this.#nft(rendered.batch);
    } catch (error) {
      if (!(error instanceof FirewallCommandError) || !part.some((change) => change.kind === 'remove')) throw this.#explain(error);
      const present = new Set(await this.readTargets());
      rendered = renderNftCommit(part, present, layout);
      if (rendered.batch !== '') {
        await this.#nft(rendered.batch).catch((retryError: unknown) => {
          throw this.#explain(retryError);
        });
      }
    }
    for (const name of rendered.created) this.#prefixSets?.add(name);
  }

  /** Flushes every set and refills it, creates the prefix sets the bans need and deletes the others, in one transaction. */
  protected planReplaceAll(bans: readonly KernelBan[]): () => Promise<void> {
    const valid = bans.map((ban) => validateBan(ban));
    return async () => {
      const existing = await this.#setNames({ tableMayBeMissing: false });
      const { batch, prefixSets } = renderNftReplaceAll(valid, this.options, existing);
      await this.#nft(batch).catch((error: unknown) => {
        throw this.#explain(error);
      });
      this.#prefixSets = new Set(prefixSets);
    };
  }

  protected async readTargets(): Promise<string[]> {
    const sets = 2 + (this.#prefixSets?.size ?? 2);
    const maxOutputBytes = Math.min(LIST_MAX_BYTES, 1024 * 1024 + sets * this.options.maxBans * LIST_BYTES_PER_ELEMENT);
    const { stdout } = await this.runner.run('nft', ['-j', 'list', 'table', ...NFT_TABLE.split(' ')], { maxOutputBytes });
    return parseNftSets(stdout).flatMap((set) => set.targets);
  }

  /** Names of the sets in our table (`-t`: without their elements). */
  async #setNames({ tableMayBeMissing }: { tableMayBeMissing: boolean }): Promise<Set<string>> {
    try {
      const { stdout } = await this.runner.run('nft', ['-j', '-t', 'list', 'table', ...NFT_TABLE.split(' ')]);
      return new Set(parseNftSets(stdout).map((set) => set.name));
    } catch (error) {
      // The first start: nft says "No such file or directory" for a missing table.
      if (tableMayBeMissing && error instanceof FirewallCommandError && /No such file or directory/.test(error.stderr)) return new Set();
      throw error;
    }
  }

  #nft(batch: string): Promise<unknown> {
    return this.runner.run('nft', ['-f', '-'], { input: batch });
  }

  /** Adds what ENFILE means here: nft only prints the errno's text. */
  #explain(error: unknown): unknown {
    if (error instanceof FirewallCommandError && /Too many open files in system/.test(error.stderr)) {
      return new FirewallCommandError(
        error.command,
        error.args,
        `${error.stderr.trimEnd()}\n(a ban set is full: each holds at most maxBans = ${this.options.maxBans} elements)`,
        { cause: error },
      );
    }
    return error;
  }
}

/**
 * The init batch, given the names of the sets our table holds now (empty on
 * the first start): table, address sets and chain created if missing, every
 * set (re)sized, the sets of earlier versions deleted, the chain's rules
 * rewritten for the address sets and the prefix sets that exist.
 */
export function renderNftInit(options: ValidBackendOptions, existing: ReadonlySet<string> = new Set()): string {
  const layout: NftLayout = { ports: options.ports, maxBans: options.maxBans, prefixSets: new Set([...existing].filter((name) => PREFIX_SET.test(name))) };
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
 * null: lifts as `add X timeout 1s; delete X` (robust to an absent X, see the
 * header). With `present` (what the kernel holds): plain deletes of the
 * present lifted targets only. Bans are `add; delete; add` either way, so
 * the new timeout holds on any kernel; a ban of a prefix length with no set
 * yet creates the set and its rule first. A lift of a prefix length with no
 * set is nothing to do. Every element is validated again right here; the
 * batch is '' when there is nothing to send.
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
  const created = sortedPrefixSets([...bans.keys()].filter((set) => PREFIX_SET.test(set) && !layout.prefixSets.has(set)));
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
  const prefixSets = sortedPrefixSets([...bySet.keys()].filter((set) => PREFIX_SET.test(set)));
  const layout: NftLayout = { ports: options.ports, maxBans: options.maxBans, prefixSets: new Set(prefixSets) };
  checkLayout(layout);
  const lines = [`flush chain ${NFT_TABLE} ${CHAIN}`];
  for (const family of [4, 6] as const) lines.push(`flush set ${NFT_TABLE} ${NFT_ADDRESS_SETS[family]}`);
  for (const name of sortedPrefixSets([...existing].filter((name) => PREFIX_SET.test(name)))) {
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
    const prefix = PREFIX_SET.exec(name);
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

/** The set of a validated ban: `addr4`/`addr6` for an address, `net4_24`-style for a prefix. */
function setOf(ban: ValidBan): string {
  return ban.scope === 'ip' ? NFT_ADDRESS_SETS[ban.family] : `net${ban.family}_${ban.prefixLength}`;
}

function prefixSetFamily(name: string): 4 | 6 {
  return PREFIX_SET.exec(name)?.[1] === '4' ? 4 : 6;
}

function prefixSetLength(name: string): number {
  return Number(PREFIX_SET.exec(name)?.[2]);
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
    const match = PREFIX_SET.exec(name);
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
