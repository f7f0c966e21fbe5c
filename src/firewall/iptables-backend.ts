/*
 * Bans as plain iptables/ip6tables rules, for hosts without nftables or
 * ipset. In the raw table of each family:
 *
 *   PREROUTING: -j PORTCULLIS                                  (inserted first, once)
 *   PORTCULLIS: -p tcp -m multiport --dports PORTS -j PORTCULLIS-ADDR
 *               -p tcp -m multiport --dports PORTS -j PORTCULLIS-NET
 *   PORTCULLIS-ADDR: -s 192.0.2.7/32 -j DROP      one rule per banned address
 *   PORTCULLIS-NET:  -s 198.51.100.0/24 -j DROP   one rule per banned prefix
 *
 * Costs and limits, on purpose documented here:
 * - Each packet to a listed port walks the rules one by one: O(bans) per
 *   packet, where nftables and ipset do one hash lookup. Fine for hundreds of
 *   bans, a CPU sink at tens of thousands: use nftables or ipset there.
 * - No kernel-side timeouts: a rule stays until portcullis removes it. The
 *   ledger lifts expired bans with remove(), and replaceAll() at start drops
 *   the ones that expired while portcullis was down. `timeoutSec` is checked
 *   but otherwise unused.
 * - maxBans is enforced here (the kernel has no cap on rules): a replaceAll
 *   that would leave more than maxBans rules in a chain fails as a whole,
 *   before anything runs; a commit applies the changes that fit and refuses
 *   the others.
 * - iptables-restore applies one table of one family atomically: IPv4 and
 *   IPv6 are two transactions.
 * - Separate chains for addresses and prefixes, so a /32 prefix ban and an
 *   address ban stay apart in list().
 *
 * Reading and writing the raw table, and the PORTCULLIS chain, are shared
 * with the ipset backend (iptables-commands.ts); the rule chains are this
 * backend's own.
 */
import type { KernelBan } from './ban-backend.js';
import { canonicalTarget, validateBan, type ValidBan } from './ban-validation.js';
import { unavailableWhenUnprivileged, type CommandRunner } from './command-runner.js';
import { parseRawChains, renderPortcullisChain, restoreRaw, saveRaw, type RawChains } from './iptables-commands.js';
import { KernelBanBackend, longestBans } from './kernel-ban-backend.js';
import { validateLift, type PendingChange } from './pending-bans.js';
import { FirewallCommandError } from '../core/errors.js';

/** Rule chains of this backend, one per scope (xtables chain names hold at most 28 characters). */
export const IPTABLES_BAN_CHAINS = { ip: 'PORTCULLIS-ADDR', prefix: 'PORTCULLIS-NET' } as const;

/** iptables-save prints ~40–70 bytes per rule. */
const SAVE_BYTES_PER_RULE = 96;
const SAVE_MAX_BYTES = 500 * 1024 * 1024;

/** Bans as iptables rules (see the header); the queue, sequence and batch splitting are KernelBanBackend's. */
export class IptablesBackend extends KernelBanBackend {
  readonly name = 'iptables';

  /**
   * For each family: rewrites PORTCULLIS for the current ports, creates the
   * rule chains if missing (keeping their rules: a restart keeps the bans)
   * and inserts the PREROUTING jump if missing, in one transaction.
   */
  protected async setUp(): Promise<void> {
    try {
      for (const family of [4, 6] as const) {
        const table = await readRawTable(this.runner, family, this.#saveBytes());
        const lines: string[] = [];
        // Declared only when missing: declaring one in `--noflush` would flush its bans.
        for (const chain of Object.values(IPTABLES_BAN_CHAINS)) {
          if (!table.chains.has(chain)) lines.push(`:${chain} - [0:0]`);
        }
        const jumps = Object.values(IPTABLES_BAN_CHAINS).map((chain) => `-j ${chain}`);
        lines.push(...renderPortcullisChain(this.options.ports, jumps, table.hasJump));
        await restoreRaw(this.runner, family, lines);
      }
    } catch (error) {
      throw unavailableWhenUnprivileged(error);
    }
  }

  /**
   * Reads the rule chains, then appends rules for new bans and deletes those
   * of present lifted targets (an absent one would fail the transaction), one
   * iptables-restore per family with changes. Idempotent, since it reads what
   * the kernel holds first. A part that would go over maxBans fails as a
   * whole, before anything is written.
   */
  protected async applyPart(part: readonly PendingChange[]): Promise<void> {
    // Both families are read and checked before either is written, so a
    // part over maxBans changes nothing.
    const work: Array<{ family: 4 | 6; lines: string[] }> = [];
    for (const family of [4, 6] as const) {
      const ofFamily = part.filter((change) => (change.kind === 'add' ? change.ban.family : change.parsed.family) === family);
      if (ofFamily.length === 0) continue;
      const table = await readRawTable(this.runner, family, this.#saveBytes());
      work.push({ family, lines: renderIptablesCommit(ofFamily, table.bans, this.options.maxBans) });
    }
    for (const { family, lines } of work) {
      if (lines.length > 0) await restoreRaw(this.runner, family, lines);
    }
  }

  /** Flushes and refills both rule chains of each family (one transaction per family). */
  protected planReplaceAll(bans: readonly KernelBan[]): () => Promise<void> {
    const byFamily = renderIptablesReplaceAll(bans, this.options.maxBans);
    return async () => {
      for (const family of [4, 6] as const) await restoreRaw(this.runner, family, byFamily[family]);
    };
  }

  protected async readTargets(): Promise<string[]> {
    const targets: string[] = [];
    for (const family of [4, 6] as const) {
      const table = await readRawTable(this.runner, family, this.#saveBytes());
      for (const chain of Object.values(IPTABLES_BAN_CHAINS)) targets.push(...table.bans[chain]);
    }
    return targets;
  }

  #saveBytes(): number {
    return Math.min(SAVE_MAX_BYTES, 1024 * 1024 + 2 * this.options.maxBans * SAVE_BYTES_PER_RULE);
  }
}

type BanChain = (typeof IPTABLES_BAN_CHAINS)[keyof typeof IPTABLES_BAN_CHAINS];

/** The restore lines of one family's commit, given the targets each rule chain holds now. Throws FirewallCommandError beyond maxBans. */
export function renderIptablesCommit(changes: readonly PendingChange[], present: Readonly<Record<BanChain, readonly string[]>>, maxBans: number): string[] {
  const lines: string[] = [];
  for (const scope of ['ip', 'prefix'] as const) {
    const chain = IPTABLES_BAN_CHAINS[scope];
    const held = new Set(present[chain]);
    for (const change of changes) {
      if (change.kind === 'add') {
        const ban = validateBan(change.ban);
        if (ban.scope !== scope || held.has(ban.target)) continue;
        held.add(ban.target);
        lines.push(`-A ${chain} ${renderSource(ban)} -j DROP`);
      } else {
        const ban = validateLift(change);
        if (ban.scope !== scope || !held.has(ban.target)) continue;
        held.delete(ban.target);
        lines.push(`-D ${chain} ${renderSource(ban)} -j DROP`);
      }
    }
    if (held.size > maxBans) throw tooManyRules(chain, held.size, maxBans);
  }
  return lines;
}

/** The restore lines of replaceAll, per family: both rule chains declared (flushed) and refilled. Throws FirewallCommandError beyond maxBans. */
export function renderIptablesReplaceAll(bans: readonly KernelBan[], maxBans: number): Record<4 | 6, string[]> {
  const chains = { 4: { ip: [] as ValidBan[], prefix: [] as ValidBan[] }, 6: { ip: [] as ValidBan[], prefix: [] as ValidBan[] } };
  for (const ban of longestBans(bans)) chains[ban.family][ban.scope].push(ban);
  const render = (family: 4 | 6): string[] => {
    const lines = Object.values(IPTABLES_BAN_CHAINS).map((chain) => `:${chain} - [0:0]`);
    for (const scope of ['ip', 'prefix'] as const) {
      const held = chains[family][scope];
      if (held.length > maxBans) throw tooManyRules(`${IPTABLES_BAN_CHAINS[scope]} (IPv${family})`, held.length, maxBans);
      for (const ban of held) lines.push(`-A ${IPTABLES_BAN_CHAINS[scope]} ${renderSource(ban)} -j DROP`);
    }
    return lines;
  };
  return { 4: render(4), 6: render(6) };
}

function renderSource(ban: ValidBan): string {
  // Written the way iptables-save prints it, so list() reads back the same text.
  return `-s ${ban.address}/${ban.prefixLength}`;
}

function tooManyRules(chain: string, count: number, maxBans: number): FirewallCommandError {
  return new FirewallCommandError('iptables-restore', ['--noflush'], `${chain} would hold ${count} rules: more than maxBans = ${maxBans}; nothing was changed`);
}

/** What `ip(6)tables-save -t raw` shows of ours: the chains, the jump, and the bans in the rule chains. */
export interface RawTableState extends RawChains {
  /** Canonical targets of the DROP rules in each rule chain (other rules there are ignored). */
  readonly bans: Readonly<Record<BanChain, readonly string[]>>;
}

/** Reads the raw table of one family with `ip(6)tables-save -t raw`. */
async function readRawTable(runner: CommandRunner, family: 4 | 6, maxOutputBytes: number): Promise<RawTableState> {
  return parseRawTable(await saveRaw(runner, family, maxOutputBytes));
}

/** Parses `iptables-save -t raw` output (see readRawTable). */
export function parseRawTable(saved: string): RawTableState {
  const bans: Record<BanChain, string[]> = { [IPTABLES_BAN_CHAINS.ip]: [], [IPTABLES_BAN_CHAINS.prefix]: [] } as Record<BanChain, string[]>;
  for (const line of saved.split('\n')) {
    const rule = /^-A (PORTCULLIS-ADDR|PORTCULLIS-NET) -s (\S+) -j DROP$/.exec(line);
    if (rule === null) continue;
    const chain = rule[1] as BanChain;
    const target = canonicalTarget(rule[2] as string, chain === IPTABLES_BAN_CHAINS.ip ? 'ip' : 'prefix');
    if (target !== null) bans[chain].push(target);
  }
  return { ...parseRawChains(saved), bans };
}
