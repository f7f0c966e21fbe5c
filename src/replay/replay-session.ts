import type { PolicyConfig } from '../config/schema.js';
import { assembleEngine, type AssembledEngine } from '../engine/engine-assembly.js';
import { makeClientKey, parseClientAddress, type ClientKey } from '../identity/client-key.js';
import type { TimedRequest } from './time-ordered-feed.js';

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
}

/** Offenders remembered, at most: the rest only count in the totals. */
const MAX_OFFENDERS = 100_000;

/**
 * Runs logged requests through the engine exactly as `serve` assembles it,
 * with the log's own timestamps as the clock: strikes, bans, prefix bans,
 * allowlists and shadow rules behave as they would have live. A request
 * from a client while it was banned counts as a `ban` decision: dropped (by
 * the kernel, with a kernel backend) before it reached Apache.
 */
export class ReplaySession {
  readonly #assembled: AssembledEngine;
  readonly #prefix: PolicyConfig['clients']['prefix'];
  readonly #decisions = { allow: 0, limit: 0, block: 0, reject: 0, ban: 0 };
  readonly #timeline = new Map<number, MinuteCount>();
  readonly #offenders = new Map<string, Offender>();
  readonly #clients = new Map<string, ClientKey | null>();
  #allowedBySecond = new Map<number, number>();
  #loggedBySecond = new Map<number, number>();
  #peakAllowed = 0;
  #peakLogged = 0;
  #unusable = 0;

  constructor(config: PolicyConfig) {
    this.#assembled = assembleEngine(config);
    this.#prefix = config.clients.prefix;
    this.#assembled.ledger.onChange((change) => {
      if (change.kind !== 'added') return;
      const { ban } = change;
      this.#minute(ban.startedMs).bans++;
      const offender = this.#offenders.get(ban.target) ?? (ban.scope === 'prefix' ? this.#offender(ban.target, ban.startedMs, 'prefix') : undefined);
      if (offender !== undefined && offender.bannedAtMs === null) {
        offender.bannedAtMs = ban.startedMs;
        offender.banMs = ban.expiresMs - ban.startedMs;
      }
    });
  }

  /** Decides one request at its instant. */
  decide({ request, atMs }: TimedRequest): void {
    const client = this.#clientKey(request.client);
    const minute = this.#minute(atMs);
    minute.requests++;
    this.#countSecond(this.#loggedBySecond, atMs, 'logged');
    if (client === null) {
      this.#unusable++;
      return;
    }
    const decision = this.#assembled.engine.decide({ client, method: request.method, target: request.target }, atMs);
    this.#decisions[decision.action]++;
    if (decision.action === 'allow') {
      this.#countSecond(this.#allowedBySecond, atMs, 'allowed');
      return;
    }
    minute.refused++;
    const rule = decision.action === 'ban' ? 'ban' : decision.action === 'reject' ? 'malformed' : decision.rule;
    const offender = this.#offenders.get(client.ip) ?? this.#offender(client.ip, atMs, rule);
    if (offender !== undefined) offender.refused++;
  }

  /** The result so far. */
  result(): ReplayResult {
    return {
      decisions: { ...this.#decisions },
      reachedApache: { requests: this.#decisions.allow, peakPerSecond: this.#peakAllowed },
      loggedPeakPerSecond: this.#peakLogged,
      timeline: [...this.#timeline.values()].sort((a, b) => a.minuteMs - b.minuteMs),
      offenders: [...this.#offenders.values()].sort((a, b) => b.refused - a.refused),
      unusableClients: this.#unusable,
    };
  }

  #offender(target: string, atMs: number, rule: string): Offender | undefined {
    if (this.#offenders.size >= MAX_OFFENDERS) return undefined;
    const offender: Offender = { target, refused: 0, firstRefusedMs: atMs, bannedAtMs: null, banMs: null, firstRule: rule };
    this.#offenders.set(target, offender);
    return offender;
  }

  #minute(atMs: number): MinuteCount {
    const minuteMs = Math.floor(atMs / 60_000) * 60_000;
    let minute = this.#timeline.get(minuteMs);
    if (minute === undefined) this.#timeline.set(minuteMs, (minute = { minuteMs, requests: 0, refused: 0, bans: 0 }));
    return minute;
  }

  /** Counts per second; only the current few seconds are kept, since the feed is in time order. */
  #countSecond(counts: Map<number, number>, atMs: number, which: 'logged' | 'allowed'): void {
    const second = Math.floor(atMs / 1000);
    const count = (counts.get(second) ?? 0) + 1;
    counts.set(second, count);
    if (which === 'logged') this.#peakLogged = Math.max(this.#peakLogged, count);
    else this.#peakAllowed = Math.max(this.#peakAllowed, count);
    if (counts.size > 8) for (const key of counts.keys()) if (key < second - 4) counts.delete(key);
  }

  #clientKey(text: string): ClientKey | null {
    let key = this.#clients.get(text);
    if (key === undefined) {
      const addr = parseClientAddress(text);
      key = addr === null ? null : makeClientKey(addr, this.#prefix);
      // Bounded like the proxy's tables: a log of millions of addresses must not keep them all.
      if (this.#clients.size >= 100_000) this.#clients.clear();
      this.#clients.set(text, key);
    }
    return key;
  }
}
