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
import { unavailableWhenUnprivileged } from './command-runner.js';
import type { KernelBan } from './ban-backend.js';
import { validateBan } from './ban-validation.js';
import { KernelBanBackend } from './kernel-ban-backend.js';
import type { PendingChange } from './pending-bans.js';
import { parseNftSets } from './nftables-listing.js';
import { NFT_PREFIX_SET, NFT_TABLE, renderNftCommit, renderNftInit, renderNftReplaceAll, type NftLayout } from './nftables-script.js';
import { FirewallCommandError } from '../core/errors.js';

/** nft's JSON costs ~70–90 bytes per element; allow 128, and stay under V8's largest string (~512 MiB). */
const LIST_BYTES_PER_ELEMENT = 128;
const LIST_MAX_BYTES = 500 * 1024 * 1024;

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
    this.#prefixSets = new Set(sets.map((set) => set.name).filter((name) => NFT_PREFIX_SET.test(name)));
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
    this.#prefixSets ??= new Set([...(await this.#setNames({ tableMayBeMissing: false }))].filter((name) => NFT_PREFIX_SET.test(name)));
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
