import ipaddr from 'ipaddr.js';
import type { LRUCache } from 'lru-cache';
import { growingLru } from '../core/growing-lru.js';
import type { ClientKey, IpAddress, PrefixLengths } from '../identity/client-key.js';
import type { Ban, BanHistory } from './ban.js';

/** A change to the set of active bans, for the firewall, the socket closer, the state file and the log. */
export type BanChange =
  | { readonly kind: 'added'; readonly ban: Ban }
  | { readonly kind: 'removed'; readonly ban: Ban; readonly why: 'expired' | 'lifted' }
  /** `maxBans` were active: this ban was not recorded and is not enforced. */
  | { readonly kind: 'full'; readonly ban: Ban };

export interface BanLedgerOptions {
  /** Most active bans; `add` refuses more (the kernel set is sized the same). */
  readonly maxBans: number;
  /** Targets whose history is remembered; least recently banned are forgotten first. */
  readonly maxHistory: number;
  /** The prefix lengths client keys use, so prefix bans of that length are found by one lookup. */
  readonly prefix: PrefixLengths;
}

/** A prefix ban of another length than the clients' (a /16 banned by hand), matched by a scan. */
interface OtherNetwork {
  readonly ban: Ban;
  readonly network: IpAddress;
  readonly bits: number;
}

/**
 * The active bans and the history of past ones: the single source of truth
 * that the proxy, the firewall backend and the state file follow. Lookups are
 * one or two Map reads, so every request can ask. Expiry is lazy (on lookup)
 * plus `sweep`, never a timer per ban.
 */
export class BanLedger {
  readonly #byTarget = new Map<string, Ban>();
  readonly #ipBansPerPrefix = new Map<string, number>();
  readonly #otherNetworks: OtherNetwork[] = [];
  readonly #history: LRUCache<string, BanHistory>;
  readonly #listeners = new Set<(change: BanChange) => void>();
  readonly #options: BanLedgerOptions;

  constructor(options: BanLedgerOptions) {
    this.#options = options;
    this.#history = growingLru(options.maxHistory);
  }

  /** Active bans, dry-run ones included. */
  get size(): number {
    return this.#byTarget.size;
  }

  /** Calls `listener` on every change; returns the function that unsubscribes it. */
  onChange(listener: (change: BanChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The enforced ban covering `client` at `nowMs` (its address, its prefix, or
   * a wider network), or null. Dry-run bans are not returned: they enforce nothing.
   */
  find(client: ClientKey, nowMs: number): Ban | null {
    if (this.#byTarget.size === 0) return null;
    const ban = this.#live(this.#byTarget.get(client.ip), nowMs) ?? this.#live(this.#byTarget.get(client.prefix), nowMs);
    if (ban !== null) return ban;
    for (const other of this.#otherNetworks) {
      if (other.network.kind() === client.addr.kind() && client.addr.match(other.network, other.bits)) {
        const live = this.#live(other.ban, nowMs);
        if (live !== null) return live;
      }
    }
    return null;
  }

  /** The active ban (dry-run or not) on exactly `target`, or null. */
  get(target: string, nowMs: number): Ban | null {
    const ban = this.#byTarget.get(target);
    if (ban === undefined) return null;
    if (ban.expiresMs <= nowMs) {
      this.#remove(ban, 'expired');
      return null;
    }
    return ban;
  }

  /**
   * Records a ban, replacing an active one on the same target, and remembers
   * it in the target's history. Returns false, recording nothing, when
   * `maxBans` are active: the caller must log and count that.
   */
  add(ban: Ban): boolean {
    const existing = this.#byTarget.get(ban.target);
    if (existing !== undefined) this.#unindex(existing);
    else if (this.#byTarget.size >= this.#options.maxBans) {
      this.#emit({ kind: 'full', ban });
      return false;
    }
    this.#byTarget.set(ban.target, ban);
    this.#index(ban);
    this.#history.set(ban.target, { bans: ban.nth, lastEndMs: ban.expiresMs });
    this.#emit({ kind: 'added', ban });
    return true;
  }

  /** Lifts the ban on exactly `target`; returns it, or null when there was none. History is kept. */
  lift(target: string): Ban | null {
    const ban = this.#byTarget.get(target);
    if (ban === undefined) return null;
    this.#remove(ban, 'lifted');
    return ban;
  }

  /** Removes every ban expired at `nowMs`, reporting each; returns them. */
  sweep(nowMs: number): Ban[] {
    const expired = [...this.#byTarget.values()].filter((ban) => ban.expiresMs <= nowMs);
    for (const ban of expired) this.#remove(ban, 'expired');
    return expired;
  }

  /** Every active ban, dry-run ones included. */
  active(): Ban[] {
    return [...this.#byTarget.values()];
  }

  /** Active address bans within `prefix` (for prefix escalation). */
  ipBansIn(prefix: string): number {
    return this.#ipBansPerPrefix.get(prefix) ?? 0;
  }

  /** What is remembered of `target`'s past bans. */
  historyOf(target: string): BanHistory | undefined {
    return this.#history.get(target);
  }

  /** Every remembered history entry (for the state file). */
  histories(): [string, BanHistory][] {
    return [...this.#history.entries()];
  }

  /** Restores a history entry read from the state file, without events. */
  restoreHistory(target: string, history: BanHistory): void {
    this.#history.set(target, history);
  }

  #live(ban: Ban | undefined, nowMs: number): Ban | null {
    if (ban === undefined || ban.dryRun) return null;
    if (ban.expiresMs <= nowMs) {
      this.#remove(ban, 'expired');
      return null;
    }
    return ban;
  }

  #remove(ban: Ban, why: 'expired' | 'lifted'): void {
    this.#byTarget.delete(ban.target);
    this.#unindex(ban);
    this.#emit({ kind: 'removed', ban, why });
  }

  // Dry-run address bans count toward prefix escalation too, so a dry run
  // reports the prefix bans a real run would make.
  #index(ban: Ban): void {
    if (ban.scope === 'ip' && ban.prefix !== null) {
      this.#ipBansPerPrefix.set(ban.prefix, (this.#ipBansPerPrefix.get(ban.prefix) ?? 0) + 1);
    } else if (ban.scope === 'prefix' && !ban.dryRun) {
      const [network, bits] = ipaddr.parseCIDR(ban.target);
      const clientBits = network.kind() === 'ipv4' ? this.#options.prefix.ipv4 : this.#options.prefix.ipv6;
      if (bits !== clientBits) this.#otherNetworks.push({ ban, network, bits });
    }
  }

  #unindex(ban: Ban): void {
    if (ban.scope === 'ip' && ban.prefix !== null) {
      const count = (this.#ipBansPerPrefix.get(ban.prefix) ?? 1) - 1;
      if (count <= 0) this.#ipBansPerPrefix.delete(ban.prefix);
      else this.#ipBansPerPrefix.set(ban.prefix, count);
    } else if (ban.scope === 'prefix') {
      const index = this.#otherNetworks.findIndex((other) => other.ban === ban);
      if (index !== -1) this.#otherNetworks.splice(index, 1);
    }
  }

  #emit(change: BanChange): void {
    for (const listener of this.#listeners) listener(change);
  }
}
