import type { EscalationConfig } from '../config/schema.js';
import type { ClientKey } from '../identity/client-key.js';
import type { Ban } from './ban.js';
import { banDurationMs, nextBanNumber, type BanDurationPolicy } from './ban-duration.js';
import type { BanLedger } from './ban-ledger.js';
import type { NeverBanList } from './never-ban-list.js';
import { StrikeCounter } from './strike-counter.js';

/** What the escalator needs besides the ledger. */
export interface EscalatorOptions {
  readonly config: EscalationConfig;
  readonly ledger: BanLedger;
  readonly neverBan: NeverBanList;
  /** Cap on clients with a strike count (the policy's clients.max_tracked). */
  readonly maxTracked: number;
  /** Told of every strike counted (metrics, cluster sharing); `rule` names what refused the request. */
  readonly onStrike?: StrikeListener;
}

/** Where a strike was earned: on this node, or on another node of the cluster (counted here too, shared once). */
export type StrikeOrigin = 'local' | 'remote';

/** A listener told of every counted strike. */
export type StrikeListener = (rule: string, weight: number, client: ClientKey, site: string | undefined, origin: StrikeOrigin) => void;

/** The outcome of a strike that earned bans; empty most of the time. */
export type Escalation = readonly Ban[];

const NONE: Escalation = Object.freeze([]);

/**
 * Turns refusals into bans: strikes per address in a sliding window, a ban
 * when they reach the threshold, longer bans for recidivists, and a ban of the whole prefix
 * once `prefix_after` of its addresses are banned at the same time (the
 * attacker who rotates through a /24 gets the /24). Pure apart from the
 * ledger it writes to: time comes in as `nowMs`.
 */
export class Escalator {
  #config: EscalationConfig;
  readonly #ledger: BanLedger;
  #neverBan: NeverBanList;
  #strikes: StrikeCounter;
  #durations: BanDurationPolicy;
  readonly #maxTracked: number;
  readonly #onStrike: StrikeListener;

  constructor(options: EscalatorOptions) {
    this.#config = options.config;
    this.#ledger = options.ledger;
    this.#neverBan = options.neverBan;
    this.#maxTracked = options.maxTracked;
    this.#onStrike = options.onStrike ?? (() => {});
    this.#strikes = new StrikeCounter(options.config.strikes, options.config.window, options.maxTracked);
    this.#durations = durationsOf(options.config);
  }

  /** The escalation settings in force. */
  get config(): EscalationConfig {
    return this.#config;
  }

  /**
   * Applies reloaded settings. Strike counts survive unless the window or the
   * threshold changed (then counts in the old terms would mislead, so they start over).
   */
  reconfigure(config: EscalationConfig, neverBan: NeverBanList): void {
    if (config.window !== this.#config.window || config.strikes !== this.#config.strikes) {
      this.#strikes = new StrikeCounter(config.strikes, config.window, this.#maxTracked);
    }
    this.#config = config;
    this.#neverBan = neverBan;
    this.#durations = durationsOf(config);
  }

  /** True when `addr` is allowlisted, a trusted proxy or the upstream: never banned. */
  protects(addr: ClientKey['addr']): boolean {
    return this.#neverBan.protects(addr);
  }

  /** True when the network `cidr` contains a never-ban address or network. */
  overlapsProtected(cidr: string): boolean {
    return this.#neverBan.overlaps(cidr);
  }

  /** How long a ban of `target` made now would last (manual bans without a duration, `explain`). */
  nextBan(target: string, nowMs: number): { nth: number; durationMs: number } {
    const nth = nextBanNumber(this.#ledger.historyOf(target), nowMs, this.#durations);
    return { nth, durationMs: banDurationMs(nth, this.#durations) };
  }

  /** Strikes `client` holds now (for `explain`). */
  strikesOf(client: ClientKey, nowMs: number): number {
    return this.#strikes.level(client.ip, nowMs);
  }


  /**
   * Counts `weight` strikes against `client` for a refused request (`rule`
   * names what refused it, `site` where, for the ban reason). Returns the
   * bans this caused, address first. `origin` remote: a strike another node
   * earned and shared, counted here toward the same ban.
   */
  strike(client: ClientKey, weight: number, rule: string, nowMs: number, site?: string, origin: StrikeOrigin = 'local'): Escalation {
    if (!this.#config.enabled || weight <= 0 || this.#neverBan.protects(client.addr)) return NONE;
    // An address banned in dry run keeps being refused by nobody; don't re-ban it on every strike.
    if (this.#ledger.get(client.ip, nowMs) !== null) return NONE;
    this.#onStrike(rule, weight, client, site, origin);
    if (!this.#strikes.add(client.ip, weight, nowMs)) return NONE;

    const where = site === undefined ? '' : ` on site ${site}`;
    const reason = `${this.#config.strikes} strikes within ${this.#config.window / 1000}s (last refused by ${rule}${where})`;
    const ipBan = this.#ban(client.ip, 'ip', client.family, client.prefix, 'strikes', reason, nowMs);
    if (ipBan === null) return NONE;
    const prefixBan = this.#maybeBanPrefix(client, nowMs);
    return prefixBan === null ? [ipBan] : [ipBan, prefixBan];
  }

  #maybeBanPrefix(client: ClientKey, nowMs: number): Ban | null {
    const threshold = this.#config.prefix_after;
    if (threshold === 0 || this.#ledger.ipBansIn(client.prefix) < threshold) return null;
    if (this.#ledger.get(client.prefix, nowMs) !== null || this.#neverBan.overlaps(client.prefix)) return null;
    const reason = `${this.#ledger.ipBansIn(client.prefix)} addresses of ${client.prefix} banned at once`;
    return this.#ban(client.prefix, 'prefix', client.family, null, 'prefix', reason, nowMs);
  }

  #ban(target: string, scope: Ban['scope'], family: 4 | 6, prefix: string | null, source: Ban['source'], reason: string, nowMs: number): Ban | null {
    const nth = nextBanNumber(this.#ledger.historyOf(target), nowMs, this.#durations);
    const ban: Ban = {
      target,
      scope,
      family,
      prefix,
      source,
      reason,
      startedMs: nowMs,
      expiresMs: nowMs + banDurationMs(nth, this.#durations),
      nth,
      dryRun: this.#config.dry_run,
    };
    return this.#ledger.add(ban) ? ban : null;
  }
}

function durationsOf(config: EscalationConfig): BanDurationPolicy {
  return { banMs: config.ban, factor: config.factor, maxBanMs: config.max_ban, forgetAfterMs: config.forget_after };
}
