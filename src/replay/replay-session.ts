import type { PolicyConfig } from '../config/schema.js';
import { detachedString } from '../core/detached-string.js';
import { assembleEngine, type AssembledEngine } from '../engine/engine-assembly.js';
import { makeClientKey, parseClientAddress, type ClientKey } from '../identity/client-key.js';
import { ClientResolver } from '../identity/client-resolver.js';
import { DEFAULT_SITE_NAME } from '../policy/compiled-site.js';
import type { LoggedRequest } from './access-log-line.js';
import { ActivityTable, looksLikeVisitor, recordActivity } from './visitor-profile.js';

/** What the replayed policy did with the requests of one client (or prefix). */
export interface Offender {
  readonly target: string;
  refused: number;
  firstRefusedMs: number;
  /** Start and length of its first ban, if it earned one. */
  bannedAtMs: number | null;
  banMs: number | null;
  /** The rule that refused it first. */
  firstRule: string;
  /** The site whose rules refused it first; null for the top-level policy. */
  firstSite: string | null;
}

/** A client refused at least once, never banned, whose requests look like an ordinary visitor's: a false-positive suspect. */
export interface Collateral {
  readonly client: string;
  readonly requests: number;
  readonly refused: number;
  readonly firstRefusedMs: number;
  readonly rule: string;
  readonly site: string | null;
  readonly userAgent: string | null;
}

/** One minute of the timeline. */
export interface MinuteCount {
  readonly minuteMs: number;
  requests: number;
  refused: number;
  bans: number;
}

/** Everything a replay found. */
export interface ReplayResult {
  readonly decisions: Record<'allow' | 'limit' | 'block' | 'reject' | 'ban', number>;
  /** Requests that would have reached Apache (allowed), and the busiest second of them. */
  readonly reachedApache: { readonly requests: number; readonly peakPerSecond: number };
  /** The busiest second of the log as it was (everything reached Apache then). */
  readonly loggedPeakPerSecond: number;
  readonly timeline: readonly MinuteCount[];
  readonly offenders: readonly Offender[];
  /** Lines whose client is not an address (a hostname logged by `HostnameLookups On`, say). */
  readonly unusableClients: number;
  /** Refused but never banned, and looking like ordinary visitors; most requests first. */
  readonly collateral: readonly Collateral[];
  /** Requests per site the policy chose (site names, `_default_`). */
  readonly bySite: Readonly<Record<string, number>>;
  /** Requests whose line names no host while the policy has sites: decided by the default site. */
  readonly withoutHost: number;
}

/** Offenders remembered, at most: the rest only count in the totals. */
const MAX_OFFENDERS = 100_000;
/** Clients whose activity is remembered for the collateral report, least recently seen forgotten first. */
const MAX_ACTIVITIES = 200_000;
/** Address strings whose client key is remembered. */
const CLIENT_CACHE_MAX = 100_000;

/**
 * Runs logged requests through the engine exactly as `serve` assembles it,
 * with the log's own timestamps as the clock: strikes, bans, prefix bans,
 * allowlists and shadow rules behave as they would have live. A request
 * from a client while it was banned counts as a `ban` decision: dropped (by
 * the kernel, with a kernel backend) before it reached Apache. A line's
 * host (`%v`/`%V`) chooses the site as the proxy would; its client is the
 * logged address, or with a trusted proxy's address the client its
 * `%{X-Forwarded-For}i` names, as the live resolver reads it.
 */
export class ReplaySession {
  readonly #assembled: AssembledEngine;
  readonly #prefix: PolicyConfig['clients']['prefix'];
  readonly #decisions = { allow: 0, limit: 0, block: 0, reject: 0, ban: 0 };
  readonly #timeline = new Map<number, MinuteCount>();
  readonly #offenders = new Map<string, Offender>();
  readonly #resolver: ClientResolver;
  readonly #activities = new ActivityTable(MAX_ACTIVITIES);
  /** Client keys of logged addresses, for lines without X-Forwarded-For: a Map, emptied when full, is cheaper per line than the resolver's LRU. */
  readonly #clients = new Map<string, ClientKey | null>();
  readonly #bySite = new Map<string, { name: string; count: number }>();
  readonly #hasSites: boolean;
  #withoutHost = 0;
  readonly #allowedPeak = new BusiestSecond();
  readonly #loggedPeak = new BusiestSecond();
  #lastMinute: MinuteCount | null = null;
  #lastSite: { name: string; count: number } | null = null;
  #unusable = 0;

  constructor(config: PolicyConfig) {
    this.#assembled = assembleEngine(config);
    this.#prefix = config.clients.prefix;
    this.#resolver = new ClientResolver({ trustedProxies: this.#assembled.policy.trustedProxies, prefix: this.#prefix });
    this.#hasSites = config.sites.length > 0;
    this.#assembled.ledger.onChange((change) => {
      if (change.kind !== 'added') return;
      const { ban } = change;
      this.#minute(ban.startedMs).bans++;
      const offender = this.#offenders.get(ban.target) ?? (ban.scope === 'prefix' ? this.#offender(ban.target, ban.startedMs, 'prefix', null) : undefined);
      if (offender !== undefined && offender.bannedAtMs === null) {
        offender.bannedAtMs = ban.startedMs;
        offender.banMs = ban.expiresMs - ban.startedMs;
      }
    });
  }

  /** Decides one request at its instant. */
  decide(request: LoggedRequest, atMs: number): void {
    const client = request.forwardedFor === undefined ? this.#clientKey(request.client) : this.#resolver.resolve(request.client, request.forwardedFor);
    const minute = this.#minute(atMs);
    minute.requests++;
    this.#loggedPeak.count(atMs);
    if (client === null) {
      this.#unusable++;
      return;
    }
    if (this.#hasSites && request.vhost === null) this.#withoutHost++;
    // A host Apache served but the proxy would refuse (400) is decided by the default site: the replay asks what the rules do.
    const policy = this.#assembled.policy;
    const site = (request.vhost === null ? null : policy.selectSite(request.vhost)) ?? policy.selectSite(undefined);
    const siteName = site?.name ?? DEFAULT_SITE_NAME;
    this.#countSite(siteName);
    recordActivity(this.#activities.touch(client.ip, atMs), request, atMs);
    const decision = this.#assembled.engine.decide({ client, method: request.method, target: request.target, site }, atMs);
    this.#decisions[decision.action]++;
    if (decision.action === 'allow') {
      this.#allowedPeak.count(atMs);
      return;
    }
    minute.refused++;
    const rule = decision.action === 'ban' ? 'ban' : decision.action === 'reject' ? 'malformed' : decision.rule;
    const ruleSite = decision.action === 'ban' || siteName === DEFAULT_SITE_NAME ? null : siteName;
    const offender = this.#offenders.get(client.ip) ?? this.#offender(client.ip, atMs, rule, ruleSite);
    if (offender !== undefined) offender.refused++;
  }

  /** The result so far. */
  result(): ReplayResult {
    return {
      decisions: { ...this.#decisions },
      reachedApache: { requests: this.#decisions.allow, peakPerSecond: this.#allowedPeak.peak },
      loggedPeakPerSecond: this.#loggedPeak.peak,
      timeline: [...this.#timeline.values()].sort((a, b) => a.minuteMs - b.minuteMs),
      offenders: [...this.#offenders.values()].sort((a, b) => b.refused - a.refused),
      unusableClients: this.#unusable,
      collateral: this.#collateral(),
      bySite: Object.fromEntries([...this.#bySite].map(([site, counter]) => [site, counter.count])),
      withoutHost: this.#withoutHost,
    };
  }

  #collateral(): Collateral[] {
    const suspects: Collateral[] = [];
    for (const offender of this.#offenders.values()) {
      if (offender.bannedAtMs !== null || offender.firstRule === 'prefix') continue;
      const activity = this.#activities.peek(offender.target);
      if (activity === undefined || !looksLikeVisitor(activity)) continue;
      suspects.push({
        client: offender.target,
        requests: activity.requests,
        refused: offender.refused,
        firstRefusedMs: offender.firstRefusedMs,
        rule: offender.firstRule,
        site: offender.firstSite,
        userAgent: activity.lastAgent,
      });
    }
    return suspects.sort((a, b) => b.requests - a.requests);
  }

  #offender(target: string, atMs: number, rule: string, site: string | null): Offender | undefined {
    if (this.#offenders.size >= MAX_OFFENDERS) return undefined;
    const offender: Offender = { target, refused: 0, firstRefusedMs: atMs, bannedAtMs: null, banMs: null, firstRule: rule, firstSite: site };
    this.#offenders.set(target, offender);
    return offender;
  }

  #minute(atMs: number): MinuteCount {
    const minuteMs = Math.floor(atMs / 60_000) * 60_000;
    if (this.#lastMinute?.minuteMs === minuteMs) return this.#lastMinute;
    let minute = this.#timeline.get(minuteMs);
    if (minute === undefined) this.#timeline.set(minuteMs, (minute = { minuteMs, requests: 0, refused: 0, bans: 0 }));
    this.#lastMinute = minute;
    return minute;
  }

  /** Lines of one site come in runs: the last site's counter is kept at hand. */
  #countSite(name: string): void {
    let counter = this.#lastSite ?? undefined;
    if (counter?.name !== name) {
      counter = this.#bySite.get(name);
      if (counter === undefined) this.#bySite.set(name, (counter = { name, count: 0 }));
      this.#lastSite = counter;
    }
    counter.count++;
  }

  #clientKey(text: string): ClientKey | null {
    let key = this.#clients.get(text);
    if (key === undefined) {
      const addr = parseClientAddress(text);
      key = addr === null ? null : makeClientKey(addr, this.#prefix);
      if (this.#clients.size >= CLIENT_CACHE_MAX) this.#clients.clear();
      this.#clients.set(detachedString(text), key);
    }
    return key;
  }
}

/** The busiest second of requests counted in time order (the feed's order). */
class BusiestSecond {
  #second = Number.NEGATIVE_INFINITY;
  #inSecond = 0;
  peak = 0;

  count(atMs: number): void {
    const second = Math.floor(atMs / 1000);
    if (second !== this.#second) {
      this.#second = second;
      this.#inSecond = 0;
    }
    if (++this.#inSecond > this.peak) this.peak = this.#inSecond;
  }
}
