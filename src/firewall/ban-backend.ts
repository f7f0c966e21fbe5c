/*
 * The kernel side of a ban. Every backend (nftables, ipset, iptables, none)
 * implements this one small interface, in the manner of CrowdSec's firewall
 * bouncer: `add`/`remove` only queue, `commit` applies the queue in one batch
 * (one `nft -f`, one `ipset restore`), so a burst of bans costs one command.
 */

/** One address or prefix to drop, as the kernel needs it. */
export interface KernelBan {
  /** Canonical address (`192.0.2.7`, `2001:db8::1`) or network CIDR (`192.0.2.0/24`, `2001:db8:1:2::/64`). */
  readonly target: string;
  readonly family: 4 | 6;
  /** `ip` for one address, `prefix` for a network. */
  readonly scope: 'ip' | 'prefix';
  /** Seconds until the kernel forgets the ban by itself (so bans expire even if portcullis dies). ≥ 1. */
  readonly timeoutSec: number;
}

/** Backend settings from `escalation` in the policy. */
export interface BanBackendOptions {
  /** TCP ports whose packets from banned sources are dropped. */
  readonly ports: readonly number[];
  /** Most bans a set may hold; a full set is an error, never a silent miss. */
  readonly maxBans: number;
}

export interface BanBackend {
  /** `nftables`, `ipset`, `iptables` or `none`. */
  readonly name: string;
  /**
   * Creates the backend's own tables/sets/chains if missing; idempotent, so a
   * restart finds what the last run left. Rejects with a BackendUnavailableError
   * (PC_ERR_FIREWALL_UNAVAILABLE) naming what is missing: the tool, or the
   * privilege (CAP_NET_ADMIN).
   */
  init(): Promise<void>;
  /** Queues a ban (replacing the timeout of an existing one). */
  add(ban: KernelBan): void;
  /** Queues the lifting of a ban. */
  remove(target: string): void;
  /**
   * Applies everything queued since the last commit in one batch. When the
   * kernel refuses part of it, applies the rest and rejects with a
   * FirewallBatchError whose `refused` names the changes that did not land;
   * rejects with another FirewallCommandError when it could apply nothing.
   */
  commit(): Promise<void>;
  /**
   * Makes the kernel hold exactly `bans` among what this backend owns, in one
   * atomic transaction: missing ones added, stray ones removed. Used at start
   * (100,000 bans in seconds, not one command each).
   */
  replaceAll(bans: readonly KernelBan[]): Promise<void>;
  /** Targets the kernel holds now (for reconciliation and tests). */
  list(): Promise<string[]>;
  /**
   * Flushes the connection-tracking entries of these sources so established
   * flows stop too; a no-op where conntrack is absent. Batched across calls
   * (a few processes at most, however many bans a flood earns). Rejects with
   * FirewallCommandError when a flush failed; the bans are in force anyway.
   */
  forgetConnections(bans: readonly KernelBan[]): Promise<void>;
}
