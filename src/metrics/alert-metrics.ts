import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { ALERT_EVENTS } from '../alerts/alert.js';

/** How one delivery of an alert to one webhook ended. */
export const ALERT_RESULTS = ['delivered', 'failed', 'dropped'] as const;
export type AlertResult = (typeof ALERT_RESULTS)[number];

/**
 * Metrics of alert delivery. Labels are closed sets (event, result), never a
 * webhook URL: URLs carry secrets (tokens in the path) and would leak them to
 * whoever reads the metrics.
 */
export class AlertMetrics {
  /** One per delivery (an alert times the webhooks configured when it was raised). */
  readonly alerts: Counter<'event' | 'result'>;
  readonly deliverySeconds: Histogram;
  readonly queueLength: Gauge;
  #pending: () => number = () => 0;

  constructor(registry: Registry) {
    const metrics = this;
    this.alerts = new Counter({
      name: 'portcullis_alerts_total',
      help: 'Alert deliveries to webhooks, by event (ban, attack_started, attack_ended) and result (delivered; failed after retries or refused by the receiver; dropped because the queue was full or portcullis stopped).',
      labelNames: ['event', 'result'],
      registers: [registry],
    });
    // Every series exists from the start at 0, so rate() and alert rules see
    // the first failure as an increase rather than as a new series.
    for (const event of ALERT_EVENTS) for (const result of ALERT_RESULTS) this.alerts.inc({ event, result }, 0);
    this.deliverySeconds = new Histogram({
      name: 'portcullis_alert_delivery_seconds',
      help: 'Time from an alert being raised to a webhook accepting it, retries included.',
      // Retries wait 1, 2, 4, 8 s: the upper buckets tell a first-try delivery from a retried one.
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    this.queueLength = new Gauge({
      name: 'portcullis_alert_queue_length',
      help: 'Alert deliveries not finished yet: waiting, in flight, or waiting to retry.',
      registers: [registry],
      // Read on scrape, so it can never drift from the queue itself.
      collect() {
        this.set(metrics.#pending());
      },
    });
  }

  /** Where the queue-length gauge reads from. */
  observeQueueLength(source: () => number): void {
    this.#pending = source;
  }
}
