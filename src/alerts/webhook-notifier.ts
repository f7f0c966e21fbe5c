import type { Logger } from 'pino';
import type { AlertsConfig } from '../config/schema.js';
import { systemClock, type Clock } from '../core/clock.js';
import { RateLimitedLog } from '../core/rate-limited-log.js';
import { systemTimers, type TimerHandle, type Timers } from '../core/timers.js';
import type { AlertMetrics } from '../metrics/alert-metrics.js';
import type { Alert, AlertEvent } from './alert.js';
import { channelKey, describeUrl, newChannel, type Channel } from './webhook-channel.js';
import { classifyStatus, describeError, insertionIndex, type Delivery, type Outcome } from './webhook-delivery.js';
import { UndiciWebhookTransport, type WebhookTransport } from './webhook-transport.js';

export interface WebhookNotifierOptions {
  readonly logger: Logger;
  readonly metrics: AlertMetrics;
  /** @default UndiciWebhookTransport */
  readonly transport?: WebhookTransport;
  /** @default systemClock */
  readonly clock?: Clock;
  /** @default systemTimers */
  readonly timers?: Timers;
  /**
   * Deliveries each webhook may have waiting (not counting those in flight).
   * Beyond it the oldest is dropped, counted and logged: a receiver that is
   * down for an hour of floods must not cost unbounded memory. @default 1000
   */
  readonly maxPendingPerWebhook?: number;
  /** Deliveries in flight to one webhook at once. @default 2 */
  readonly maxInFlightPerWebhook?: number;
  /** Attempts per delivery, the first included. @default 5 */
  readonly maxAttempts?: number;
  /** Wait before the first retry; each further retry waits twice as long (1, 2, 4, 8 s). @default 1000 */
  readonly retryBaseMs?: number;
  /** The longest `close()` waits for aborted deliveries and connections to wind down. @default 1000 */
  readonly closeGraceMs?: number;
}

/** Why an attempt's signal was aborted; compared by identity. */
const TIMED_OUT = new Error('webhook attempt timed out');
const CLOSING = new Error('alerts are shutting down');

/**
 * Delivers alerts to every configured webhook without ever making the caller
 * wait: `notify` only queues (serialising the alert once), and deliveries run
 * in the background. Failed attempts (network error, timeout, 429, 5xx) are
 * retried with exponential backoff; any other status is final. Memory is
 * bounded per webhook; a single timer per webhook drives its retries.
 */
export class WebhookNotifier {
  readonly #logger: Logger;
  readonly #metrics: AlertMetrics;
  readonly #transport: WebhookTransport;
  readonly #clock: Clock;
  readonly #timers: Timers;
  readonly #warnings: RateLimitedLog;
  readonly #maxPending: number;
  readonly #maxInFlight: number;
  readonly #maxAttempts: number;
  readonly #retryBaseMs: number;
  readonly #closeGraceMs: number;
  /** Every live channel by identity (URL and headers), retired ones included until they drain. */
  readonly #channels = new Map<string, Channel>();
  /** The channels new alerts go to. */
  #active: Channel[] = [];
  #timeoutMs = 0;
  #seq = 0;
  #closing: Promise<void> | null = null;

  constructor(config: AlertsConfig, options: WebhookNotifierOptions) {
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#transport = options.transport ?? new UndiciWebhookTransport();
    this.#clock = options.clock ?? systemClock;
    this.#timers = options.timers ?? systemTimers;
    this.#warnings = new RateLimitedLog(this.#logger, this.#clock);
    this.#maxPending = positiveInteger('maxPendingPerWebhook', options.maxPendingPerWebhook ?? 1000);
    this.#maxInFlight = positiveInteger('maxInFlightPerWebhook', options.maxInFlightPerWebhook ?? 2);
    this.#maxAttempts = positiveInteger('maxAttempts', options.maxAttempts ?? 5);
    this.#retryBaseMs = options.retryBaseMs ?? 1000;
    this.#closeGraceMs = options.closeGraceMs ?? 1000;
    this.#metrics.observeQueueLength(() => this.pending);
    this.setConfig(config);
  }

  /** Deliveries not finished: waiting, in flight, or waiting to retry, over all webhooks. */
  get pending(): number {
    let count = 0;
    for (const channel of this.#channels.values()) count += channel.queue.length + channel.inFlight.size;
    return count;
  }

  /** True when at least one webhook is configured. */
  get enabled(): boolean {
    return this.#active.length > 0;
  }

  /**
   * Queues `alert` for every webhook configured now, and returns at once: the
   * cost is one JSON.stringify and a push per webhook. Never throws for a
   * delivery problem. After `close()` it does nothing.
   */
  notify(alert: Alert): void {
    if (this.#active.length === 0 || this.#closing !== null) return;
    const body = JSON.stringify(alert);
    const raisedMs = this.#clock.nowMs();
    const seq = this.#seq++;
    for (const channel of this.#active) {
      channel.queue.push({ event: alert.event, body, seq, raisedMs, attempts: 0, dueMs: raisedMs });
      this.#trim(channel);
      this.#schedulePump(channel);
    }
  }

  /**
   * Applies a reloaded `alerts` section. New and changed webhooks receive
   * alerts raised from now on; deliveries already queued still go where they
   * were headed. The new timeout applies to the next attempt.
   */
  setConfig(config: AlertsConfig): void {
    this.#timeoutMs = config.timeout;
    const active: Channel[] = [];
    for (const webhook of config.webhooks) {
      const key = channelKey(webhook);
      let channel = this.#channels.get(key);
      // The same webhook listed twice gets each alert once.
      if (channel !== undefined && active.includes(channel)) continue;
      if (channel === undefined) {
        channel = newChannel(key, webhook);
        this.#channels.set(key, channel);
      }
      channel.retired = false;
      active.push(channel);
    }
    for (const channel of this.#channels.values()) {
      if (active.includes(channel)) continue;
      channel.retired = true;
      this.#forgetIfDone(channel);
    }
    this.#active = active;
  }

  /**
   * Stops for good: cancels retries, aborts deliveries in flight, drops what
   * is queued (counted as dropped) and closes connections. Resolves within
   * `closeGraceMs` (1 s) even if a transport is slow to let go.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    let dropped = 0;
    const inFlight: Promise<void>[] = [];
    for (const channel of this.#channels.values()) {
      if (channel.timer !== null) this.#timers.clearTimeout(channel.timer);
      channel.timer = null;
      for (const delivery of channel.queue) this.#count(delivery.event, 'dropped');
      dropped += channel.queue.length + channel.inFlight.size;
      channel.queue.length = 0;
      for (const [delivery, attempt] of channel.inFlight) {
        this.#count(delivery.event, 'dropped');
        attempt.controller.abort(CLOSING);
        inFlight.push(attempt.done);
      }
    }
    if (dropped > 0) this.#logger.warn({ dropped }, 'alerts not delivered: portcullis is stopping');
    let grace: TimerHandle = null;
    const deadline = new Promise<void>((resolve) => {
      // Kept alive: the shutdown steps after `await close()` must still run.
      grace = this.#timers.setTimeout(resolve, this.#closeGraceMs, true);
    });
    const windDown = Promise.allSettled(inFlight).then(() => this.#transport.close());
    await Promise.race([windDown.catch((error: unknown) => this.#logger.warn({ err: error }, 'closing the webhook transport failed')), deadline]);
    this.#timers.clearTimeout(grace);
    this.#channels.clear();
    this.#active = [];
  }

  /** Drops the oldest waiting deliveries beyond the bound. */
  #trim(channel: Channel): void {
    while (channel.queue.length > this.#maxPending) {
      const oldest = channel.queue.shift() as Delivery;
      this.#count(oldest.event, 'dropped');
      this.#warnings.warn(
        'alert_dropped',
        { event: oldest.event, webhook: describeUrl(channel.webhook.url), maxPending: this.#maxPending },
        'alert dropped: too many alerts waiting for this webhook (is the receiver down?)',
      );
    }
  }

  /** Pumps once after the current burst of notify calls, so a burst costs one scan of the queue. */
  #schedulePump(channel: Channel): void {
    if (channel.pumpScheduled) return;
    channel.pumpScheduled = true;
    queueMicrotask(() => {
      channel.pumpScheduled = false;
      this.#pump(channel);
    });
  }

  /** Starts every due delivery the in-flight cap allows, and arms the timer for the next retry. */
  #pump(channel: Channel): void {
    if (this.#closing !== null) return;
    const now = this.#clock.nowMs();
    let nextDueMs = Number.POSITIVE_INFINITY;
    // The queue holds at most maxPending entries and only this loop's few
    // starts splice it, so a scan is cheap next to one HTTP request.
    for (let i = 0; i < channel.queue.length; ) {
      if (channel.inFlight.size >= this.#maxInFlight) return; // a finishing delivery pumps again
      const delivery = channel.queue[i] as Delivery;
      if (delivery.dueMs <= now) {
        channel.queue.splice(i, 1);
        this.#attempt(channel, delivery);
      } else {
        nextDueMs = Math.min(nextDueMs, delivery.dueMs);
        i++;
      }
    }
    if (channel.timer !== null) this.#timers.clearTimeout(channel.timer);
    channel.timer = null;
    if (nextDueMs !== Number.POSITIVE_INFINITY) {
      channel.timer = this.#timers.setTimeout(() => {
        channel.timer = null;
        this.#pump(channel);
      }, nextDueMs - now);
    }
  }

  #attempt(channel: Channel, delivery: Delivery): void {
    delivery.attempts++;
    const controller = new AbortController();
    const timeout = this.#timers.setTimeout(() => controller.abort(TIMED_OUT), this.#timeoutMs);
    const done = this.#transport
      .post({ url: channel.webhook.url, headers: channel.webhook.headers, body: delivery.body }, controller.signal)
      .then(classifyStatus, (error: unknown): Outcome => {
        if (controller.signal.reason === CLOSING) return { kind: 'closed' };
        if (controller.signal.reason === TIMED_OUT) return { kind: 'retry', why: `no answer within ${this.#timeoutMs} ms` };
        return { kind: 'retry', why: describeError(error) };
      })
      .then((outcome) => {
        this.#timers.clearTimeout(timeout);
        channel.inFlight.delete(delivery);
        this.#settle(channel, delivery, outcome);
      });
    channel.inFlight.set(delivery, { controller, done });
  }

  #settle(channel: Channel, delivery: Delivery, outcome: Outcome): void {
    if (outcome.kind === 'closed' || this.#closing !== null) return;
    const webhook = describeUrl(channel.webhook.url);
    const fields = { event: delivery.event, webhook, attempts: delivery.attempts };
    if (outcome.kind === 'delivered') {
      this.#count(delivery.event, 'delivered');
      this.#metrics.deliverySeconds.observe((this.#clock.nowMs() - delivery.raisedMs) / 1000);
    } else if (outcome.kind === 'refused') {
      this.#count(delivery.event, 'failed');
      this.#warnings.warn('alert_refused', { ...fields, status: outcome.status }, 'webhook refused the alert; not retried (check its URL and headers)');
    } else if (delivery.attempts >= this.#maxAttempts) {
      this.#count(delivery.event, 'failed');
      this.#warnings.warn('alert_failed', { ...fields, status: outcome.status, why: outcome.why }, 'alert not delivered: the webhook kept failing');
    } else {
      // No jitter: each webhook has at most a few deliveries in flight, so
      // retries in step cannot stampede the receiver.
      delivery.dueMs = this.#clock.nowMs() + this.#retryBaseMs * 2 ** (delivery.attempts - 1);
      this.#logger.debug({ ...fields, status: outcome.status, why: outcome.why, retryInMs: delivery.dueMs - this.#clock.nowMs() }, 'alert delivery failed; will retry');
      channel.queue.splice(insertionIndex(channel.queue, delivery.seq), 0, delivery);
      this.#trim(channel);
    }
    this.#pump(channel);
    if (channel.retired) this.#forgetIfDone(channel);
  }

  #forgetIfDone(channel: Channel): void {
    if (channel.queue.length > 0 || channel.inFlight.size > 0) return;
    if (channel.timer !== null) this.#timers.clearTimeout(channel.timer);
    channel.timer = null;
    if (this.#channels.get(channel.key) === channel) this.#channels.delete(channel.key);
  }

  #count(event: AlertEvent, result: 'delivered' | 'failed' | 'dropped'): void {
    this.#metrics.alerts.inc({ event, result });
  }
}

function positiveInteger(name: string, value: number): number {
  if (!(Number.isInteger(value) && value > 0)) throw new RangeError(`WebhookNotifier ${name} must be a positive integer, got ${value}`);
  return value;
}
