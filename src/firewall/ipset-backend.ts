/*
 * Bans as ipset entries with kernel timeouts, matched by iptables rules:
 *
 *   ipset: portcullis4      hash:ip  family inet  timeout 0 maxelem MAX
 *          portcullis6      hash:ip  family inet6 timeout 0 maxelem MAX
 *          portcullis-net4  hash:net family inet  timeout 0 maxelem MAX
 *          portcullis-net6  hash:net family inet6 timeout 0 maxelem MAX
 *   raw PREROUTING: -j PORTCULLIS                              (inserted first, once)
 *   raw PORTCULLIS: -p tcp -m multiport --dports PORTS -m set --match-set portcullis4 src -j DROP
 *                   (and portcullis-net4; ip6tables: portcullis6, portcullis-net6)
 *
 * - ipset set names hold at most 31 characters (IPSET_MAXNAMELEN 32 with the
 *   NUL); ours and their `-tmp` twins stay well inside.
 * - `timeout 0` at creation makes a set that takes a timeout per element (0 =
 *   never expires); ipset's largest timeout is 2,147,483 s (~24.8 days), so
 *   longer bans are written with that (the proxy still enforces the rest, and
 *   replaceAll() at start writes what remains).
 * - `maxelem` is maxBans: a full set answers "Hash is full, cannot add more
 *   elements", which surfaces as a FirewallCommandError. Expired entries count
 *   until the kernel's garbage collection removes them.
 * - hash:net allows overlapping networks, unlike an nftables interval set.
 * - The raw table is before conntrack: every packet of a banned source is
 *   dropped, established connections included.
 * - `ipset restore` is not a transaction: it stops at the first failing line,
 *   keeping the lines before it. commit() lifts before it bans, so a full set
 *   still frees room, and splits a failed batch to apply the lines after the
 *   refused one too. replaceAll() fills fresh `-tmp` sets and `swap`s each
 *   into place, which is atomic per set: a failure leaves the old sets intact.
 */
import type { KernelBan } from './ban-backend.js';
import { canonicalTarget, validateBan, validateTimeoutSec, type ValidBan } from './ban-validation.js';
import { unavailableWhenUnprivileged } from './command-runner.js';
import { parseRawChains, renderPortcullisChain, restoreRaw, saveRaw } from './iptables-commands.js';
import { KernelBanBackend, longestBans } from './kernel-ban-backend.js';
import { validateLift, type PendingChange } from './pending-bans.js';
import { FirewallCommandError } from '../core/errors.js';

/** Our sets, by family and scope. */
export const IPSET_SETS = {
  ip4: { name: 'portcullis4', type: 'hash:ip', family: 'inet' },
  ip6: { name: 'portcullis6', type: 'hash:ip', family: 'inet6' },
  prefix4: { name: 'portcullis-net4', type: 'hash:net', family: 'inet' },
  prefix6: { name: 'portcullis-net6', type: 'hash:net', family: 'inet6' },
} as const;
type SetSpec = (typeof IPSET_SETS)[keyof typeof IPSET_SETS];
const ALL_SETS: readonly SetSpec[] = Object.values(IPSET_SETS);

/** Suffix of the sets replaceAll() fills before swapping them in. */
const TEMP_SUFFIX = '-tmp';

/** ipset refuses timeouts above 2,147,483 s ("out of range 0-2147483"). */
export const IPSET_MAX_TIMEOUT_SEC = 2_147_483;

/** `ipset save` prints ~40–70 bytes per entry. */
const SAVE_BYTES_PER_ENTRY = 96;
const SAVE_MAX_BYTES = 500 * 1024 * 1024;
/** A restore of a million entries takes seconds; give it room. */
const RESTORE_TIMEOUT_MS = 60_000;

/** Bans as ipset entries (see the header); the queue, sequence and batch splitting are KernelBanBackend's. */
export class IpsetBackend extends KernelBanBackend {
  readonly name = 'ipset';

  /**
   * Creates the sets if missing (an existing set keeps its entries; one with
   * another maxelem is copied into a new set and swapped in), then for each
   * family rewrites PORTCULLIS for the current ports and inserts the
   * PREROUTING jump if missing, in one iptables-restore transaction.
   */
  protected async setUp(): Promise<void> {
    try {
      for (const set of ALL_SETS) await this.#ensureSet(set);
      for (const family of [4, 6] as const) {
        const table = parseRawChains(await saveRaw(this.runner, family, 1024 * 1024));
        const sets = family === 4 ? [IPSET_SETS.ip4, IPSET_SETS.prefix4] : [IPSET_SETS.ip6, IPSET_SETS.prefix6];
        const matches = sets.map((set) => `-m set --match-set ${set.name} src -j DROP`);
        await restoreRaw(this.runner, family, renderPortcullisChain(this.options.ports, matches, table.hasJump));
      }
    } catch (error) {
      throw unavailableWhenUnprivileged(error);
    }
  }

  /**
   * One `ipset restore -exist`: lifts (`del`, absent ones ignored) first,
   * then bans (`add`, an existing one gets the new timeout). -exist makes a
   * line applied twice harmless, so a part may be applied again.
   */
  protected async applyPart(part: readonly PendingChange[]): Promise<void> {
    await this.#restore(renderIpsetCommit(part));
  }

  /** Fills fresh `-tmp` sets, swaps each into place and destroys the old contents. */
  protected planReplaceAll(bans: readonly KernelBan[]): () => Promise<void> {
    const input = renderIpsetReplaceAll(bans, this.options.maxBans);
    return async () => {
      // Left-overs of a run that died half way would make `create` fail.
      await this.#restore(renderDestroyTemps());
      try {
        await this.#restore(input);
      } finally {
        await this.#restore(renderDestroyTemps()).catch(() => {});
      }
    };
  }

  protected async readTargets(): Promise<string[]> {
    const targets: string[] = [];
    for (const set of ALL_SETS) {
      for (const entry of await this.#save(set.name)) targets.push(entry.target);
    }
    return targets;
  }

  async #ensureSet(set: SetSpec): Promise<void> {
    const header = await this.#header(set.name);
    if (header === null) {
      await this.#restore(`${renderCreate(set, set.name, this.options.maxBans)}\n`);
      return;
    }
    if (header.type !== set.type || header.family !== set.family || !header.hasTimeout) {
      throw new FirewallCommandError(
        'ipset',
        ['list', '-t', set.name],
        `set ${set.name} exists as ${header.type} family ${header.family}${header.hasTimeout ? '' : ' without timeout support'}, ` +
          `portcullis needs ${set.type} family ${set.family} with timeouts; remove it (\`ipset destroy ${set.name}\`, after the iptables rule using it) and start again`,
      );
    }
    if (header.maxelem === this.options.maxBans) return;
    // maxelem cannot change in place: copy the entries (with what remains of their timeouts) into a new set and swap.
    const entries = await this.#save(set.name);
    const temp = `${set.name}${TEMP_SUFFIX}`;
    const lines = [`destroy ${temp}`, renderCreate(set, temp, this.options.maxBans)];
    for (const entry of entries) lines.push(renderAdd(temp, entry.target, entry.timeoutSec));
    lines.push(`swap ${temp} ${set.name}`, `destroy ${temp}`);
    await this.#restore(`${lines.join('\n')}\n`);
  }

  async #header(name: string): Promise<IpsetHeader | null> {
    const names = (await this.runner.run('ipset', ['list', '-n'])).stdout.split('\n');
    if (!names.includes(name)) return null;
    return parseIpsetHeader((await this.runner.run('ipset', ['list', '-t', name])).stdout);
  }

  async #save(name: string): Promise<Array<{ target: string; timeoutSec: number }>> {
    const maxOutputBytes = Math.min(SAVE_MAX_BYTES, 1024 * 1024 + this.options.maxBans * SAVE_BYTES_PER_ENTRY);
    const { stdout } = await this.runner.run('ipset', ['save', name], { maxOutputBytes });
    return parseIpsetSave(stdout, name);
  }

  #restore(input: string): Promise<unknown> {
    return this.runner.run('ipset', ['restore', '-exist'], { input, timeoutMs: RESTORE_TIMEOUT_MS });
  }
}

/** The restore input of one commit: lifts first (room in a full set), then bans. Every element is validated again here. */
export function renderIpsetCommit(changes: readonly PendingChange[]): string {
  const lifts: string[] = [];
  const bans: string[] = [];
  for (const change of changes) {
    if (change.kind === 'add') {
      const ban = validateBan(change.ban);
      bans.push(renderAdd(setOf(ban).name, ban.target, ban.timeoutSec));
    } else {
      const ban = validateLift(change);
      lifts.push(`del ${setOf(ban).name} ${ban.target}`);
    }
  }
  return `${[...lifts, ...bans].join('\n')}\n`;
}

/** The restore input of replaceAll: fresh `-tmp` sets filled, swapped in, destroyed. Throws a RangeError for an invalid ban. */
export function renderIpsetReplaceAll(bans: readonly KernelBan[], maxBans: number): string {
  const bySet = new Map<SetSpec, ValidBan[]>(ALL_SETS.map((set) => [set, []]));
  for (const ban of longestBans(bans)) bySet.get(setOf(ban))?.push(ban);
  const lines: string[] = [];
  for (const [set, entries] of bySet) {
    const temp = `${set.name}${TEMP_SUFFIX}`;
    lines.push(renderCreate(set, temp, maxBans));
    for (const ban of entries) lines.push(renderAdd(temp, ban.target, ban.timeoutSec));
  }
  // Swaps last: a failure while filling leaves every live set as it was.
  for (const set of ALL_SETS) lines.push(`swap ${set.name}${TEMP_SUFFIX} ${set.name}`);
  return `${lines.join('\n')}\n`;
}

function renderDestroyTemps(): string {
  // With -exist, destroying an absent set is not an error.
  return `${ALL_SETS.map((set) => `destroy ${set.name}${TEMP_SUFFIX}`).join('\n')}\n`;
}

function renderCreate(set: SetSpec, name: string, maxBans: number): string {
  if (!Number.isInteger(maxBans) || maxBans < 1) throw new RangeError(`maxBans must be a positive whole number, got ${maxBans}`);
  return `create ${name} ${set.type} family ${set.family} timeout 0 maxelem ${maxBans}`;
}

function renderAdd(setName: string, target: string, timeoutSec: number): string {
  validateTimeoutSec(timeoutSec, target);
  return `add ${setName} ${target} timeout ${Math.min(timeoutSec, IPSET_MAX_TIMEOUT_SEC)}`;
}

function setOf(ban: ValidBan): SetSpec {
  if (ban.scope === 'ip') return ban.family === 4 ? IPSET_SETS.ip4 : IPSET_SETS.ip6;
  return ban.family === 4 ? IPSET_SETS.prefix4 : IPSET_SETS.prefix6;
}

/** What `ipset list -t NAME` says about a set. */
export interface IpsetHeader {
  readonly type: string;
  readonly family: string;
  readonly maxelem: number;
  readonly hasTimeout: boolean;
}

/** Parses `ipset list -t NAME` (`Type: hash:ip`, `Header: family inet hashsize 1024 maxelem 65536 timeout 0 ...`). */
export function parseIpsetHeader(text: string): IpsetHeader {
  const type = /^Type: (\S+)$/m.exec(text)?.[1] ?? '';
  const header = /^Header: (.*)$/m.exec(text)?.[1] ?? '';
  const words = header.split(' ');
  const value = (key: string): string | undefined => {
    const index = words.indexOf(key);
    return index === -1 ? undefined : words[index + 1];
  };
  return { type, family: value('family') ?? '', maxelem: Number(value('maxelem') ?? 'NaN'), hasTimeout: value('timeout') !== undefined };
}

/**
 * Parses `ipset save NAME` into canonical targets with the seconds left.
 * ipset prints a /32 (/128) network of a hash:net set as a bare address; it
 * is read back as a prefix, like it was written.
 */
export function parseIpsetSave(text: string, name: string): Array<{ target: string; timeoutSec: number }> {
  const set = ALL_SETS.find((spec) => spec.name === name);
  const scope = set?.type === 'hash:net' ? 'prefix' : 'ip';
  const entries: Array<{ target: string; timeoutSec: number }> = [];
  const prefix = `add ${name} `;
  for (const line of text.split('\n')) {
    if (!line.startsWith(prefix)) continue;
    const words = line.slice(prefix.length).split(' ');
    const target = canonicalTarget(words[0] ?? '', scope);
    if (target === null) continue;
    const timeoutIndex = words.indexOf('timeout');
    // 0 means "never expires"; keep such an entry (it is ours to list) with the longest timeout.
    const left = timeoutIndex === -1 ? 0 : Number(words[timeoutIndex + 1]);
    entries.push({ target, timeoutSec: Number.isInteger(left) && left >= 1 ? left : IPSET_MAX_TIMEOUT_SEC });
  }
  return entries;
}
