/*
 * Bans as nftables set elements with kernel timeouts, in portcullis's own
 * table `inet portcullis`:
 *
 *   set addr4 { type ipv4_addr; flags timeout; size MAX; }
 *   set addr6 { type ipv6_addr; flags timeout; size MAX; }
 *   set net4  { type ipv4_addr; flags interval, timeout; size MAX; }
 *   set net6  { type ipv6_addr; flags interval, timeout; size MAX; }
 *   chain prerouting { type filter hook prerouting priority raw; policy accept;
 *     tcp dport { PORTS } ip saddr @addr4 counter drop  (and @net4, @addr6, @net6) }
 *
 * - Prefixes live apart from addresses: elements of one interval set must not
 *   overlap, and a banned address inside a banned /24 is normal.
 * - `size` is always written: a set without one is unbounded, and sets that
 *   fill from the packet path default to 65,536 — a silent cap either way.
 * - Priority raw (-300) is before conntrack (-200): every packet of a banned
 *   source is dropped, established keep-alive floods included, and it never
 *   costs a conntrack entry.
 *
 * Kernel/tool facts this file relies on (nft 1.0.6, Linux 6.x, checked in
 * test/system/firewall/nftables-backend.test.ts):
 * - A batch (`nft -f`) is one transaction: one failing command aborts it all.
 * - `delete element` of an absent element fails (ENOENT), and an element whose
 *   timeout has passed is absent even before the kernel's garbage collection.
 *   nft 1.0.6 has no `destroy element`. So a lift is written as `add element X
 *   timeout 1s; delete element X`: the add makes X exist whatever its state,
 *   the delete removes it, within one transaction.
 * - That add fails when the set is full (ENFILE, "Too many open files in
 *   system") and X is absent, and on a prefix that overlaps a banned one; then
 *   the batch is sent again with a plain delete of only the targets `nft -j
 *   list` shows present (one retry: a ban expiring in between fails it).
 * - `add element` of an existing element updates its timeout only on recent
 *   kernels (6.18 does; older ones keep the old timeout), so a ban is written
 *   `add; delete; add` to set its timeout on every kernel.
 * - Overlapping prefixes in the interval sets are refused ("interval overlaps
 *   with an existing one"): commit() of a /16 while a /24 inside it is banned
 *   fails; replaceAll() keeps only the outermost of nested prefixes.
 * - Expired elements still count towards `size` until garbage collection.
 */
import ipaddr from 'ipaddr.js';
import type { BanBackend, BanBackendOptions, KernelBan } from './ban-backend.js';
import { applyInParts } from './batch-splitting.js';
import { canonicalTarget, validateBackendOptions, validateBan, validatePort, type ValidBackendOptions, type ValidBan } from './ban-validation.js';
import { CommandRunner, unavailableWhenUnprivileged } from './command-runner.js';
import { ConntrackFlusher } from './conntrack.js';
import { CommandSequence, PendingBans, type PendingChange } from './pending-bans.js';
import { FirewallBatchError, FirewallCommandError } from '../core/errors.js';

/** The table portcullis owns; nothing outside it is touched. */
export const NFT_TABLE = 'inet portcullis';
const CHAIN = 'prerouting';

/** Set names by family and scope. */
export const NFT_SETS = { ip4: 'addr4', ip6: 'addr6', prefix4: 'net4', prefix6: 'net6' } as const;
const ALL_SETS = Object.values(NFT_SETS);
type SetName = (typeof ALL_SETS)[number];

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

export class NftablesBackend implements BanBackend {
  readonly name = 'nftables';
  readonly #options: ValidBackendOptions;
  readonly #runner: CommandRunner;
  readonly #pending: PendingBans;
  readonly #sequence = new CommandSequence();
  readonly #conntrack: ConntrackFlusher;

  /** Throws a RangeError for invalid options (ports 1–65535, maxBans ≥ 1). */
  constructor(options: BanBackendOptions, runner: CommandRunner = new CommandRunner()) {
    this.#options = validateBackendOptions(options);
    this.#runner = runner;
    this.#pending = new PendingBans(2 * this.#options.maxBans);
    this.#conntrack = new ConntrackFlusher(runner);
  }

  /**
   * Creates the table, sets and chain if missing and (re)writes the chain's
   * rules for the current ports, in one transaction. Set elements survive:
   * a restart keeps every ban. Then checks that each set's size is maxBans
   * (a kernel that cannot resize a set keeps the old size: that is an error).
   */
  init(): Promise<void> {
    return this.#sequence.run(async () => {
      try {
        await this.#nft(renderNftInit(this.#options));
      } catch (error) {
        throw unavailableWhenUnprivileged(error);
      }
      const args = ['-j', '-t', 'list', 'table', ...NFT_TABLE.split(' ')];
      const { stdout } = await this.#runner.run('nft', args);
      for (const set of parseNftSets(stdout)) {
        if (set.size !== this.#options.maxBans) {
          throw new FirewallCommandError(
            'nft',
            args,
            `set ${set.name} has size ${set.size ?? 'unlimited'}, but maxBans is ${this.#options.maxBans} and this kernel did not resize it; ` +
              `run \`nft delete table ${NFT_TABLE}\` (the bans are restored at start) and start again`,
          );
        }
      }
    });
  }

  add(ban: KernelBan): void {
    this.#pending.add(ban);
  }

  remove(target: string): void {
    this.#pending.remove(target);
  }

  /**
   * Applies the queue in one transaction. When the kernel refuses it, the
   * batch is split and retried (batch-splitting.ts): the changes it accepts
   * are applied, and the commit rejects with a FirewallBatchError naming the
   * refused ones.
   */
  commit(): Promise<void> {
    const changes = this.#pending.take();
    if (changes.length === 0) return Promise.resolve();
    return this.#sequence.run(async () => {
      const refused = await applyInParts(changes, (part) => this.#commitPart(part));
      if (refused.length > 0) throw new FirewallBatchError(refused, changes.length);
    });
  }

  replaceAll(bans: readonly KernelBan[]): Promise<void> {
    let batch: string;
    try {
      batch = renderNftReplaceAll(bans);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#sequence.run(async () => {
      await this.#nft(batch).catch((error: unknown) => {
        throw this.#explain(error);
      });
    });
  }

  list(): Promise<string[]> {
    return this.#sequence.run(() => this.#list());
  }

  forgetConnections(bans: readonly KernelBan[]): Promise<void> {
    return this.#conntrack.forget(bans);
  }

  async #list(): Promise<string[]> {
    const maxOutputBytes = Math.min(LIST_MAX_BYTES, 1024 * 1024 + ALL_SETS.length * this.#options.maxBans * LIST_BYTES_PER_ELEMENT);
    const { stdout } = await this.#runner.run('nft', ['-j', 'list', 'table', ...NFT_TABLE.split(' ')], { maxOutputBytes });
    return parseNftSets(stdout).flatMap((set) => set.targets);
  }

  /** One transaction of `part`; on failure with lifts, one retry with plain deletes of the present lifted targets (see the header). */
  async #commitPart(part: readonly PendingChange[]): Promise<void> {
    try {
      await this.#nft(renderNftCommit(part, null));
    } catch (error) {
      if (!(error instanceof FirewallCommandError) || !part.some((change) => change.kind === 'remove')) throw this.#explain(error);
      const present = new Set(await this.#list());
      const batch = renderNftCommit(part, present);
      if (batch === '') return;
      await this.#nft(batch).catch((retryError: unknown) => {
        throw this.#explain(retryError);
      });
    }
  }

  #nft(batch: string): Promise<unknown> {
    return this.#runner.run('nft', ['-f', '-'], { input: batch });
  }

  /** Adds what ENFILE means here: nft only prints the errno's text. */
  #explain(error: unknown): unknown {
    if (error instanceof FirewallCommandError && /Too many open files in system/.test(error.stderr)) {
      return new FirewallCommandError(
        error.command,
        error.args,
        `${error.stderr.trimEnd()}\n(a ban set is full: each holds at most maxBans = ${this.#options.maxBans} elements)`,
        { cause: error },
      );
    }
    return error;
  }
}

/** The init batch: table, sets and chain created if missing, the chain's rules rewritten. */
export function renderNftInit(options: ValidBackendOptions): string {
  for (const port of options.ports) validatePort(port);
  if (!Number.isInteger(options.maxBans) || options.maxBans < 1) throw new RangeError(`maxBans must be a positive whole number, got ${options.maxBans}`);
  const ports = options.ports.join(', ');
  const size = options.maxBans;
  return [
    `add table ${NFT_TABLE}`,
    `add set ${NFT_TABLE} ${NFT_SETS.ip4} { type ipv4_addr; flags timeout; size ${size}; }`,
    `add set ${NFT_TABLE} ${NFT_SETS.ip6} { type ipv6_addr; flags timeout; size ${size}; }`,
    `add set ${NFT_TABLE} ${NFT_SETS.prefix4} { type ipv4_addr; flags interval, timeout; size ${size}; }`,
    `add set ${NFT_TABLE} ${NFT_SETS.prefix6} { type ipv6_addr; flags interval, timeout; size ${size}; }`,
    `add chain ${NFT_TABLE} ${CHAIN} { type filter hook prerouting priority raw; policy accept; }`,
    `flush chain ${NFT_TABLE} ${CHAIN}`,
    // Port first: a packet to another port costs one comparison, not a set lookup.
    `add rule ${NFT_TABLE} ${CHAIN} tcp dport { ${ports} } ip saddr @${NFT_SETS.ip4} counter drop`,
    `add rule ${NFT_TABLE} ${CHAIN} tcp dport { ${ports} } ip saddr @${NFT_SETS.prefix4} counter drop`,
    `add rule ${NFT_TABLE} ${CHAIN} tcp dport { ${ports} } ip6 saddr @${NFT_SETS.ip6} counter drop`,
    `add rule ${NFT_TABLE} ${CHAIN} tcp dport { ${ports} } ip6 saddr @${NFT_SETS.prefix6} counter drop`,
    '',
  ].join('\n');
}

/**
 * The batch of one commit. With `present` null: lifts as `add X timeout 1s;
 * delete X` (robust to an absent X, see the header). With `present` (what
 * the kernel holds): plain deletes of the present lifted targets only. Bans
 * are `add; delete; add` either way, so the new timeout holds on any kernel.
 * Every element is validated again right here.
 */
export function renderNftCommit(changes: readonly PendingChange[], present: ReadonlySet<string> | null): string {
  const lines: string[] = [];
  for (const set of ALL_SETS) {
    const lifts: string[] = [];
    const bans: ValidBan[] = [];
    for (const change of changes) {
      if (change.kind === 'add') {
        const ban = validateBan(change.ban);
        if (setOf(ban.family, ban.scope) === set) bans.push(ban);
      } else {
        const parsed = validateBan({ target: change.target, family: change.parsed.family, scope: change.parsed.isPrefix ? 'prefix' : 'ip', timeoutSec: 1 });
        if (setOf(parsed.family, parsed.scope) !== set) continue;
        if (present === null || present.has(parsed.target)) lifts.push(parsed.target);
      }
    }
    if (lifts.length > 0) {
      if (present === null) lines.push(elementStatement('add', set, lifts.map((target) => `${target} timeout ${PLACEHOLDER_TIMEOUT}`)));
      lines.push(elementStatement('delete', set, lifts));
    }
    if (bans.length > 0) {
      lines.push(elementStatement('add', set, bans.map(renderElement)));
      lines.push(elementStatement('delete', set, bans.map((ban) => ban.target)));
      lines.push(elementStatement('add', set, bans.map(renderElement)));
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * The batch of replaceAll: the four sets flushed and refilled in one
 * transaction. Duplicate targets keep the longest timeout; a prefix inside
 * another banned prefix is left out (an interval set refuses overlaps, and
 * the outer one drops its packets anyway).
 */
export function renderNftReplaceAll(bans: readonly KernelBan[]): string {
  const bySet = new Map<SetName, Map<string, ValidBan>>(ALL_SETS.map((set) => [set, new Map()]));
  for (const ban of bans) {
    const valid = validateBan(ban);
    const elements = bySet.get(setOf(valid.family, valid.scope)) as Map<string, ValidBan>;
    const previous = elements.get(valid.target);
    if (previous === undefined || previous.timeoutSec < valid.timeoutSec) elements.set(valid.target, valid);
  }
  const lines = ALL_SETS.map((set) => `flush set ${NFT_TABLE} ${set}`);
  for (const [set, elements] of bySet) {
    let kept = [...elements.values()];
    if (set === NFT_SETS.prefix4 || set === NFT_SETS.prefix6) kept = dropNestedPrefixes(kept);
    if (kept.length > 0) lines.push(elementStatement('add', set, kept.map(renderElement)));
  }
  return `${lines.join('\n')}\n`;
}

/** One set of the table as `nft -j list table` shows it. */
export interface NftSetListing {
  readonly name: SetName;
  /** Absent when the set has no size (unbounded). */
  readonly size: number | undefined;
  /** Canonical targets (prefixes always with their length); ranges nft made of other elements as `FIRST-LAST`. */
  readonly targets: string[];
}

/** Parses `nft -j [-t] list table inet portcullis`: our four sets, others ignored. Throws on output that is not nft JSON. */
export function parseNftSets(json: string): NftSetListing[] {
  const document = JSON.parse(json) as { nftables?: unknown };
  if (!Array.isArray(document.nftables)) throw new Error('nft -j printed JSON without an "nftables" array');
  const sets: NftSetListing[] = [];
  for (const item of document.nftables as Array<Record<string, unknown>>) {
    const set = item.set as { name?: unknown; size?: unknown; elem?: unknown } | undefined;
    if (set === undefined || !(ALL_SETS as readonly unknown[]).includes(set.name)) continue;
    const name = set.name as SetName;
    const scope = name === NFT_SETS.prefix4 || name === NFT_SETS.prefix6 ? 'prefix' : 'ip';
    const targets: string[] = [];
    for (const entry of Array.isArray(set.elem) ? (set.elem as unknown[]) : []) {
      const target = elementTarget(entry, scope);
      if (target !== null) targets.push(target);
    }
    sets.push({ name, size: typeof set.size === 'number' ? set.size : undefined, targets });
  }
  return sets;
}

function elementTarget(entry: unknown, scope: 'ip' | 'prefix'): string | null {
  // An element with options is { elem: { val, timeout, expires } }; without, the bare value.
  const value = typeof entry === 'object' && entry !== null && 'elem' in entry ? (entry as { elem: { val?: unknown } }).elem.val : entry;
  if (typeof value === 'string') return canonicalTarget(value, scope);
  if (typeof value === 'object' && value !== null) {
    const prefix = (value as { prefix?: { addr?: unknown; len?: unknown } }).prefix;
    if (prefix !== undefined) return canonicalTarget(`${String(prefix.addr)}/${String(prefix.len)}`, scope);
    const range = (value as { range?: unknown }).range;
    if (Array.isArray(range)) return `${String(range[0])}-${String(range[1])}`;
  }
  return null;
}

/**
 * The prefixes not inside another one of the list (same family), so an
 * interval set can hold them all. Shortest prefixes are kept first; a lookup
 * per distinct shorter length decides each one.
 */
export function dropNestedPrefixes(prefixes: readonly ValidBan[]): ValidBan[] {
  const sorted = [...prefixes].sort((a, b) => a.prefixLength - b.prefixLength);
  const keptByLength = new Map<string, Set<string>>();
  const kept: ValidBan[] = [];
  for (const prefix of sorted) {
    let nested = false;
    for (const [key, networks] of keptByLength) {
      const [family, lengthText] = key.split('/');
      const length = Number(lengthText);
      if (Number(family) !== prefix.family || length > prefix.prefixLength) continue;
      if (networks.has(networkAddress(prefix.address, prefix.family, length))) {
        nested = true;
        break;
      }
    }
    if (nested) continue;
    kept.push(prefix);
    const key = `${prefix.family}/${prefix.prefixLength}`;
    let networks = keptByLength.get(key);
    if (networks === undefined) keptByLength.set(key, (networks = new Set()));
    networks.add(prefix.address);
  }
  return kept;
}

function networkAddress(address: string, family: 4 | 6, length: number): string {
  return family === 4
    ? ipaddr.IPv4.networkAddressFromCIDR(`${address}/${length}`).toString()
    : ipaddr.IPv6.networkAddressFromCIDR(`${address}/${length}`).toRFC5952String();
}

function setOf(family: 4 | 6, scope: 'ip' | 'prefix'): SetName {
  if (scope === 'ip') return family === 4 ? NFT_SETS.ip4 : NFT_SETS.ip6;
  return family === 4 ? NFT_SETS.prefix4 : NFT_SETS.prefix6;
}

function renderElement(ban: ValidBan): string {
  return `${ban.target} timeout ${Math.min(ban.timeoutSec, NFT_MAX_TIMEOUT_SEC)}s`;
}

function elementStatement(verb: 'add' | 'delete', set: SetName, elements: readonly string[]): string {
  return `${verb} element ${NFT_TABLE} ${set} { ${elements.join(', ')} }`;
}
