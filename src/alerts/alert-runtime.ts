import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AlertsConfig } from '../config/schema.js';
import type { Clock, WallClock } from '../core/clock.js';
import { systemTimers, type TimerHandle, type Timers } from '../core/timers.js';
import type { BanLedger } from '../escalation/ban-ledger.js';
import { AlertMetrics } from '../metrics/alert-metrics.js';
import { createAttackAlert, createBanAlert, type AlertOrigin } from './alert.js';
import { AttackDetector } from './attack-detector.js';
import { WebhookNotifier } from './webhook-notifier.js';
import type { WebhookTransport } from './webhook-transport.js';

/** Alerting as the proxy sees it. */
export interface AlertsRuntime {
  /**
   * Counts `count` refused requests at `nowMs` (the engine's monotonic clock)
   * toward attack detection. Cheap enough to call for every refused request;
   * a no-op when no webhook is configured.
   */
  recordRefusals(count: number, nowMs: number): void;
  /** Applies a reloaded `alerts` section (webhooks, threshold, timeout). */
  setConfig(config: AlertsConfig): void;
  /** Stops polling, aborts deliveries in flight and drops queued ones; resolves within about 1 s. */
  close(): Promise<void>;
}

export interface AlertsDeps {
  /** Bans are alerted as the ledger records them (`added` changes, dry-run ones included). */
  readonly ledger: BanLedger;
  /** The engine's monotonic clock, which ban times are on. */
  readonly clock: Clock;
  /** Wall-clock milliseconds since the epoch, for the times in alerts. */
  readonly wall: WallClock;
  readonly logger: Logger;
  /** Where `portcullis_alert*` metrics are registered; startAlerts may be called once per registry. */
  readonly registry: Registry;
  /** @default UndiciWebhookTransport (tests pass a ScriptedWebhookTransport) */
  readonly transport?: WebhookTransport;
  /** @default systemTimers */
  readonly timers?: Timers;
  /** Names this proxy in alerts. @default os.hostname() */
  readonly host?: string;
}

/** How often the attack detector is asked whether an attack started or ended. */
const POLL_INTERVAL_MS = 1_000;

/**
 * Sends an alert to every configured webhook for each ban the ledger records
 * and when an attack starts or ends. Call it after the ledger has been
 * restored from the state file: bans restored at start are not news, and
 * would otherwise each be alerted again.
 *
 * With no webhook configured it holds no detector and runs no timer:
 * `recordRefusals` is one comparison, and each ban one more.
 */
export function startAlerts(config: AlertsConfig, deps: AlertsDeps): AlertsRuntime {
  const { ledger, clock, wall, logger } = deps;
  const host = deps.host ?? hostname();
  const timers = deps.timers ?? systemTimers;
  const notifier = new WebhookNotifier(config, {
    logger,
    metrics: new AlertMetrics(deps.registry),
    ...(deps.transport === undefined ? {} : { transport: deps.transport }),
    clock,
    timers,
  });
  let detector: AttackDetector | null = null;
  let poller: TimerHandle = null;
  let closed = false;

  const origin = (): AlertOrigin => ({ nowEpochMs: wall.epochMs(), host });
  const toEpochMs = (monotonicMs: number): number => wall.epochMs() + (monotonicMs - clock.nowMs());

  const poll = (): void => {
    const event = detector?.poll(clock.nowMs()) ?? null;
    if (event === null) return;
    if (event.kind === 'attack_started') {
      logger.warn({ ratePerSec: event.ratePerSec, threshold: event.threshold }, 'under attack: refused requests reached alerts.attack_threshold');
    } else {
      logger.info({ peakRatePerSec: event.peakRatePerSec, durationMs: event.durationMs }, 'attack over: refused requests stayed below alerts.attack_threshold for a minute');
    }
    notifier.notify(createAttackAlert(event, origin()));
  };

  const stopDetecting = (): void => {
    detector = null;
    if (poller !== null) timers.clearInterval(poller);
    poller = null;
  };

  const apply = (next: AlertsConfig): void => {
    if (closed) return;
    notifier.setConfig(next);
    if (notifier.enabled) {
      // Kept across reloads, so an attack in progress ends with one attack_ended, not never.
      if (detector === null) detector = new AttackDetector(next.attack_threshold);
      else detector.setThreshold(next.attack_threshold);
      if (poller === null) {
        poller = timers.setInterval(poll, POLL_INTERVAL_MS);
      }
    } else {
      stopDetecting();
    }
  };

  const unsubscribe = ledger.onChange((change) => {
    if (change.kind !== 'added' || !notifier.enabled) return;
    // The ledger calls its listeners in a row (firewall, state file, ...):
    // an alerting bug must not stop the others from hearing of the ban.
    try {
      notifier.notify(createBanAlert(change.ban, toEpochMs, origin()));
    } catch (error) {
      logger.error({ err: error, target: change.ban.target }, 'could not raise the ban alert');
    }
  });

  apply(config);

  return {
    recordRefusals(count, nowMs) {
      if (detector !== null) detector.record(count, nowMs);
    },
    setConfig: apply,
    async close() {
      closed = true;
      unsubscribe();
      stopDetecting();
      await notifier.close();
    },
  };
}
