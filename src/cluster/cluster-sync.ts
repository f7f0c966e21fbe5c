import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock, WallClock } from '../core/clock.js';
import type { TimerHandle, Timers } from '../core/timers.js';
import type { BanChange, BanLedger } from '../escalation/ban-ledger.js';
import type { Ban } from '../escalation/ban.js';
import type { Escalator } from '../escalation/escalator.js';
import { makeClientKey, parseClientAddress, type ClientKey, type PrefixLengths } from '../identity/client-key.js';
import type { ClusterMetrics } from '../metrics/cluster-metrics.js';
import { fromSharedBan, parseSharedBan, toSharedBan } from './cluster-bans.js';
import { MAX_MESSAGE_CHARS, readClusterMessage, type ClusterMessage } from './cluster-messages.js';
import { heardBanToAdd } from './heard-ban.js';
import type { RedisClient } from './redis-connection.js';
import { SharedBanHash } from './shared-ban-hash.js';
import { StrikeBatch } from './strike-batch.js';

/** First wait before a failed reconcile is tried again; it doubles up to the next. */
const RECONCILE_RETRY_MIN_MS = 1_000;
/** Longest wait between tries of a reconcile that keeps failing (a judgement call: a minute of log lines at most). */
const RECONCILE_RETRY_MAX_MS = 60_000;
/** Announcements in flight at once after a reconcile. */
const ANNOUNCE_SLICE = 1_000;

export interface ClusterSyncParts {
  /** Commands (bans hash, publish). */
  readonly redis: RedisClient;
  /** A second connection in subscriber mode. */
  readonly subscriber: RedisClient;
  /** `store.prefix`. */
  readonly prefix: string;
  readonly ledger: BanLedger;
  readonly escalator: Escalator;
  readonly clientPrefix: PrefixLengths;
  readonly clock: Clock;
  readonly wall: WallClock;
  readonly timers: Timers;
  readonly logger: Logger;
  readonly metrics: ClusterMetrics;
}

/**
 * Shares strikes and bans between nodes through Redis. Strikes are batched
 * per 100 ms and published; every node counts them toward the same ban.
 * Every ban a node makes (by strikes, prefix escalation or by hand) is
 * written to one Redis hash, with its expiry and count (so growing bans and
 * prefix bans work across nodes), and published; a lift is deleted and
 * published. Each node applies what it hears to its own ledger, from which
 * its in-proxy list and its kernel backend follow. At start and at every
 * reconnect the hash and the ledger are reconciled as a union: the longer
 * expiry wins, and bans made while Redis was away are written to it.
 */
export class ClusterSync {
  readonly #parts: ClusterSyncParts;
  readonly #node = randomUUID();
  readonly #channel: string;
  readonly #bans: SharedBanHash;
  readonly #strikes: StrikeBatch;
  /** Set while a ban or lift heard from another node is applied, so it is not sent back. */
  #applying = false;
  #unsubscribe: (() => void) | null = null;
  #reconciling = false;
  #reconcileAgain = false;
  #retryTimer: TimerHandle = null;
  #retryMs = RECONCILE_RETRY_MIN_MS;
  #closed = false;

  constructor(parts: ClusterSyncParts) {
    this.#parts = parts;
    this.#channel = `${parts.prefix}events`;
    this.#bans = new SharedBanHash(parts.redis, `${parts.prefix}bans`);
    this.#strikes = new StrikeBatch(parts.timers, (strikes) => this.#publish({ from: this.#node, kind: 'strikes', strikes }, 'strikes'));
  }

  /** Subscribes, follows the ledger, and reconciles now and at every reconnect of either connection. */
  async start(): Promise<void> {
    const { subscriber, redis, ledger } = this.#parts;
    subscriber.on('message', this.#onMessage);
    this.#unsubscribe = ledger.onChange((change) => this.#share(change));
    redis.on('ready', this.#onRedisReady);
    // Events published while the subscriber is away are lost, and it
    // reconnects on its own, not with the command connection: a ban another
    // node announced meanwhile would never arrive. So each time it is back,
    // the subscription is confirmed first and the bans reconciled after it.
    subscriber.on('ready', this.#onSubscriberReady);
    if (subscriber.status === 'ready') await this.#subscribeThenReconcile();
    else if (redis.status === 'ready') await this.reconcile();
  }

  readonly #onMessage = (channel: string, text: string): void => {
    if (channel === this.#channel) this.#receive(text);
  };
  readonly #onRedisReady = (): void => void this.reconcile();
  readonly #onSubscriberReady = (): void => void this.#subscribeThenReconcile();

  /**
   * Subscribes, then reconciles. A node writes a ban to the hash before it
   * publishes it, so any ban published before the subscription took effect
   * is in the hash that the reconcile reads after it.
   */
  async #subscribeThenReconcile(): Promise<void> {
    // A reconnect between close() and the connections' end subscribes nothing.
    if (this.#closed) return;
    try {
      await this.#parts.subscriber.subscribe(this.#channel);
    } catch (error) {
      this.#parts.logger.warn({ err: (error as Error).message }, 'cluster: subscribing to ban and strike events failed; retried when the subscriber reconnects');
      return;
    }
    if (this.#parts.redis.status === 'ready') await this.reconcile();
  }

  /** A strike this node counted: sent to the others with the next batch. */
  strike(client: ClientKey, weight: number, rule: string, site: string | undefined): void {
    this.#strikes.add(client, weight, rule, site);
  }

  /**
   * Makes the ledger and the shared bans one: loads what others banned, writes
   * what this node banned meanwhile (in slices, see SharedBanHash). A
   * reconcile asked for while one runs (a reconnect during it) runs after it.
   */
  async reconcile(): Promise<void> {
    if (this.#closed) return;
    if (this.#reconciling) {
      this.#reconcileAgain = true;
      return;
    }
    this.#reconciling = true;
    this.#parts.timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    let done = false;
    try {
      do {
        this.#reconcileAgain = false;
        done = await this.#reconcileOnce();
      } while (this.#reconcileAgain);
    } finally {
      this.#reconciling = false;
    }
    // A failure while the connection stays up (a command past store.timeout)
    // brings no reconnect to try again at: a timer does, backing off.
    if (done) this.#retryMs = RECONCILE_RETRY_MIN_MS;
    else if (!this.#closed) {
      // While disconnected, the reconnect's `ready` reconciles instead.
      this.#retryTimer = this.#parts.timers.setTimeout(() => {
        this.#retryTimer = null;
        if (this.#parts.redis.status === 'ready') void this.reconcile();
      }, this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, RECONCILE_RETRY_MAX_MS);
    }
  }

  /** One reconcile; false when it could not finish (logged). */
  async #reconcileOnce(): Promise<boolean> {
    const { ledger, clock, wall, logger } = this.#parts;
    try {
      const stored = await this.#bans.readAll();
      const nowMs = clock.nowMs();
      const expired: string[] = [];
      const theirs = new Map<string, Ban>();
      for (const [target, text] of stored) {
        const shared = parseSharedBan(text, clock, wall);
        if (shared === null) {
          expired.push(target);
          continue;
        }
        theirs.set(target, shared);
        this.#applyBan(shared, nowMs);
      }
      await this.#bans.deleteAll(expired);
      // Then ours: every active ban Redis lacks, or holds shorter, is written.
      const writes: [string, string][] = [];
      const announce: unknown[] = [];
      for (const ban of ledger.active()) {
        const known = theirs.get(ban.target);
        // A stored dry-run ban does not cover an enforced one of ours.
        if (known !== undefined && known.expiresMs >= ban.expiresMs && (ban.dryRun || !known.dryRun)) continue;
        const shared = toSharedBan(ban, clock, wall);
        writes.push([ban.target, JSON.stringify(shared)]);
        announce.push(shared);
      }
      await this.#bans.writeAll(writes);
      // Nodes that reconciled before this one wrote would not see them otherwise.
      for (let i = 0; i < announce.length; i += ANNOUNCE_SLICE) {
        await Promise.all(announce.slice(i, i + ANNOUNCE_SLICE).map((ban) => this.#publish({ from: this.#node, kind: 'ban', ban }, 'ban')));
      }
      logger.info({ shared: theirs.size, written: writes.length }, 'cluster: bans reconciled with the shared store');
      return true;
    } catch (error) {
      logger.warn({ err: (error as Error).message, retryInMs: this.#retryMs }, 'cluster: could not reconcile bans with the shared store; tried again later and at reconnect');
      return false;
    }
  }

  /** Sends the last strikes and stops following: nothing heard or reconciled after this reaches the ledger. */
  async close(): Promise<void> {
    this.#closed = true;
    const { redis, subscriber } = this.#parts;
    subscriber.off('message', this.#onMessage);
    redis.off('ready', this.#onRedisReady);
    subscriber.off('ready', this.#onSubscriberReady);
    this.#parts.timers.clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
    await this.#strikes.flush().catch(() => undefined);
    this.#unsubscribe?.();
  }

  #share(change: BanChange): void {
    if (this.#applying) return;
    const { clock, wall } = this.#parts;
    if (change.kind === 'added') {
      const shared = toSharedBan(change.ban, clock, wall);
      this.#bans.write(change.ban.target, JSON.stringify(shared)).catch(() => undefined);
      void this.#publish({ from: this.#node, kind: 'ban', ban: shared }, 'ban');
    } else if (change.kind === 'removed' && change.why === 'lifted') {
      this.#bans.delete(change.ban.target).catch(() => undefined);
      void this.#publish({ from: this.#node, kind: 'lift', target: change.ban.target }, 'lift');
    } else if (change.kind === 'removed') {
      // Expired here: out of the hash too, unless another node has written a longer one since.
      this.#bans.forgetEnded(change.ban.target, wall.epochMs()).catch(() => undefined);
    }
  }

  async #publish(message: ClusterMessage, kind: ClusterMessage['kind']): Promise<void> {
    try {
      await this.#parts.redis.publish(this.#channel, JSON.stringify(message));
      this.#parts.metrics.countMessage(kind, 'out');
    } catch {
      // Redis is away: bans are written at the reconcile after it returns; strikes of the outage stay local.
    }
  }

  /**
   * Applies one message of the channel. Anything that can publish to the
   * channel can send anything, so the text is untrusted input: bounded in
   * size, parsed without trusting its shape (a `null`, a strike entry that is
   * no array, a site that is no string are skipped), and a failure while
   * applying it is logged, never thrown: this runs inside ioredis's socket
   * handler, where a throw is an uncaught exception that ends the process.
   */
  #receive(text: string): void {
    const heard = readClusterMessage(text);
    if ('dropped' in heard) {
      if (heard.dropped === 'oversized') this.#parts.logger.warn({ chars: text.length, max: MAX_MESSAGE_CHARS }, 'cluster: ignored an oversized message on the cluster channel');
      return;
    }
    const { message } = heard;
    if (message.from === this.#node) return;
    try {
      this.#apply(message);
    } catch (error) {
      this.#parts.logger.warn({ err: (error as Error).message, kind: message.kind }, 'cluster: could not apply a message from another node');
    }
  }

  #apply(message: ClusterMessage): void {
    const { escalator, ledger, clock, clientPrefix, metrics } = this.#parts;
    const nowMs = clock.nowMs();
    if (message.kind === 'strikes') {
      metrics.countMessage('strikes', 'in');
      for (const [ip, weight, rule, site] of message.strikes) {
        const addr = parseClientAddress(ip);
        if (addr === null) continue;
        escalator.strike(makeClientKey(addr, clientPrefix), weight, rule, nowMs, site ?? undefined, 'remote');
      }
    } else if (message.kind === 'ban') {
      metrics.countMessage('ban', 'in');
      const shared = fromSharedBan(message.ban, clock, this.#parts.wall);
      if ('ban' in shared) this.#applyBan(shared.ban, nowMs);
    } else {
      metrics.countMessage('lift', 'in');
      this.#applying = true;
      try {
        ledger.lift(message.target);
      } finally {
        this.#applying = false;
      }
    }
  }

  /** Adds a ban heard from another node unless this node holds one on the target that lasts as long. */
  #applyBan(ban: Ban, nowMs: number): void {
    const ledger = this.#parts.ledger;
    // This node's never-ban list holds here too (fail safe): another node with
    // another policy may not know this one's allowlist, trusted proxies or
    // upstream, and a ban on one of them cuts off every client behind it, or Apache.
    if (this.#protects(ban)) {
      this.#parts.logger.warn({ target: ban.target, source: ban.source }, 'cluster: ignored a ban from another node on an address this node never bans (allowlisted, trusted proxy or upstream)');
      return;
    }
    const applied = heardBanToAdd(ban, ledger.get(ban.target, nowMs), this.#parts.escalator.config.dry_run);
    if (applied === null) return;
    this.#applying = true;
    try {
      ledger.add(applied);
    } finally {
      this.#applying = false;
    }
  }

  #protects(ban: Ban): boolean {
    const { escalator } = this.#parts;
    if (ban.scope === 'prefix') return escalator.overlapsProtected(ban.target);
    const addr = parseClientAddress(ban.target);
    return addr !== null && escalator.protects(addr);
  }
}
