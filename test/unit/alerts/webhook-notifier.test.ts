import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createAttackAlert, type Alert } from '../../../src/alerts/alert.js';
import { WebhookNotifier, type WebhookNotifierOptions } from '../../../src/alerts/webhook-notifier.js';
import { ScriptedWebhookTransport, type RecordedWebhookRequest } from '../../../src/alerts/webhook-transport.js';
import type { AlertsConfig, WebhookConfig } from '../../../src/config/schema.js';
import { AlertMetrics } from '../../../src/metrics/alert-metrics.js';
import { capturingLogger } from '../../support/captured-log.js';

const A = 'http://a.test/hook';
const B = 'http://b.test/hook';

function alerts(webhooks: (string | WebhookConfig)[], timeout = 5_000): AlertsConfig {
  return { webhooks: webhooks.map((webhook) => (typeof webhook === 'string' ? { url: webhook, headers: {} } : webhook)), attack_threshold: 50, timeout };
}

/** A distinct alert per `n`, so a test can tell which ones arrived. */
function alert(n = 1): Alert {
  return createAttackAlert({ kind: 'attack_started', ratePerSec: n, threshold: 50 }, { nowEpochMs: 0, host: 'web1' });
}

const never = () => new Promise<number>(() => {});

function setup(config: AlertsConfig, respond?: (request: RecordedWebhookRequest) => number | Promise<number>, options: Partial<WebhookNotifierOptions> = {}) {
  const registry = new Registry();
  const metrics = new AlertMetrics(registry);
  const transport = new ScriptedWebhookTransport(respond);
  const logs: Record<string, unknown>[] = [];
  const logger = capturingLogger((entry) => logs.push(entry), 'debug');
  const notifier = new WebhookNotifier(config, { logger, metrics, transport, ...options });
  const start = performance.now();
  /** Milliseconds since setup at which each request was sent. */
  const sentAt: number[] = [];
  const original = transport.post.bind(transport);
  transport.post = (request, signal) => {
    sentAt.push(performance.now() - start);
    return original(request, signal);
  };
  const count = async (result: string, event = 'attack_started') => {
    const values = (await registry.getSingleMetric('portcullis_alerts_total')?.get())?.values ?? [];
    return values.find((value) => value.labels['event'] === event && value.labels['result'] === result)?.value;
  };
  const warnings = (kind: string) => logs.filter((line) => line['kind'] === kind);
  return { notifier, transport, registry, logs, sentAt, count, warnings };
}

/** Which alerts (by their `n`) a list of requests carried. */
function numbers(requests: readonly RecordedWebhookRequest[]): number[] {
  return requests.map((request) => (JSON.parse(request.body) as { attack: { refused_per_second: number } }).attack.refused_per_second);
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe('WebhookNotifier: delivery', () => {
  it('posts each alert as JSON to every webhook, with its configured headers, after notify has returned', async () => {
    const { notifier, transport, count, registry } = setup(alerts([{ url: A, headers: { authorization: 'Bearer s3cret' } }, B]));
    notifier.notify(alert(7));
    expect(transport.requests).toEqual([]);
    expect(notifier.pending).toBe(2);
    await vi.advanceTimersByTimeAsync(0);
    expect(transport.requests.map((request) => [request.url, request.headers])).toEqual([
      [A, { authorization: 'Bearer s3cret' }],
      [B, {}],
    ]);
    expect(JSON.parse(transport.requests[0]?.body ?? '')).toEqual(alert(7));
    expect(await count('delivered')).toBe(2);
    expect(await count('failed')).toBe(0);
    expect(notifier.pending).toBe(0);
    expect(await registry.getSingleMetricAsString('portcullis_alert_queue_length')).toMatch(/portcullis_alert_queue_length 0/);
    expect(await registry.getSingleMetricAsString('portcullis_alert_delivery_seconds')).toMatch(/portcullis_alert_delivery_seconds_count 2/);
  });

  it('sends nothing when no webhook is configured', async () => {
    const { notifier, transport } = setup(alerts([]));
    expect(notifier.enabled).toBe(false);
    notifier.notify(alert());
    await vi.advanceTimersByTimeAsync(60_000);
    expect(transport.requests).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sends an alert once to a webhook listed twice', async () => {
    const { notifier, transport } = setup(alerts([A, A]));
    notifier.notify(alert());
    await vi.advanceTimersByTimeAsync(0);
    expect(transport.requests).toHaveLength(1);
  });
});

describe('WebhookNotifier: retries', () => {
  it('delivers on the third attempt to a receiver that answers 500 twice, after waiting 1 s then 2 s', async () => {
    const { notifier, transport, sentAt, count } = setup(alerts([A]), (request) => (request.nthToUrl <= 2 ? 500 : 200));
    notifier.notify(alert());
    await vi.advanceTimersByTimeAsync(999);
    expect(transport.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(transport.requests).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(sentAt).toEqual([0, 1_000, 3_000]);
    expect(await count('delivered')).toBe(1);
    expect(await count('failed')).toBe(0);
  });

  it('gives up after 5 attempts (waits of 1, 2, 4, 8 s), counts the failure and logs it without the secret path', async () => {
    const { notifier, sentAt, count, warnings } = setup(alerts(['http://hooks.test/services/T000/SECRET']), () => 503);
    notifier.notify(alert());
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sentAt).toEqual([0, 1_000, 3_000, 7_000, 15_000]);
    expect(await count('failed')).toBe(1);
    expect(notifier.pending).toBe(0);
    expect(warnings('alert_failed')).toEqual([expect.objectContaining({ webhook: 'http://hooks.test', attempts: 5, status: 503 })]);
    expect(JSON.stringify(warnings('alert_failed'))).not.toContain('SECRET');
  });

  it('retries 429 and network errors, but not other 4xx', async () => {
    const C = 'http://c.test/hook';
    const { notifier, transport, count, warnings } = setup(alerts([A, B, C]), (request) => {
      if (request.url === A) return request.nthToUrl === 1 ? 429 : 200;
      if (request.url === B && request.nthToUrl === 1) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
      if (request.url === C) return 404;
      return 200;
    });
    notifier.notify(alert());
    await vi.advanceTimersByTimeAsync(60_000);
    expect(transport.requests.map((request) => request.url)).toEqual([A, B, C, A, B]);
    expect(await count('delivered')).toBe(2);
    expect(await count('failed')).toBe(1);
    expect(warnings('alert_refused')).toEqual([expect.objectContaining({ webhook: 'http://c.test', status: 404 })]);
  });

  it('aborts an attempt that gets no answer within alerts.timeout, and retries it', async () => {
    const { notifier, sentAt, count } = setup(alerts([A], 2_000), (request) => (request.nthToUrl === 1 ? never() : 200));
    notifier.notify(alert());
    await vi.advanceTimersByTimeAsync(1_999);
    expect(sentAt).toEqual([0]);
    expect(notifier.pending).toBe(1);
    await vi.advanceTimersByTimeAsync(1_001 + 1_000);
    expect(sentAt).toEqual([0, 3_000]);
    expect(await count('delivered')).toBe(1);
  });
});

describe('WebhookNotifier: bounds', () => {
  it('keeps at most 2 deliveries in flight to a hung receiver and drops the oldest beyond the queue bound', async () => {
    let hanging = true;
    const { notifier, transport, count, warnings, registry } = setup(alerts([A], 5_000), () => (hanging ? never() : 200), { maxPendingPerWebhook: 10 });
    // A burst: deliveries start only after it, when the newest 10 are left.
    for (let n = 1; n <= 100; n++) notifier.notify(alert(n));
    expect(notifier.pending).toBe(10);
    expect(await count('dropped')).toBe(90);
    // One log line for the burst; the next says how many it held back.
    expect(warnings('alert_dropped')).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(numbers(transport.requests)).toEqual([91, 92]);
    expect(await registry.getSingleMetricAsString('portcullis_alert_queue_length')).toMatch(/portcullis_alert_queue_length 10/);

    // The receiver recovers: the two hung attempts time out after 5 s and
    // are retried a second later; the others go through meanwhile.
    hanging = false;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(numbers(transport.requests.slice(2))).toEqual([93, 94, 95, 96, 97, 98, 99, 100, 91, 92]);
    expect(await count('delivered')).toBe(10);
    expect(await count('dropped')).toBe(90);
    expect(notifier.pending).toBe(0);
  });

  it('counts deliveries in flight apart from the bound: a retry that finds the queue full is dropped as the oldest', async () => {
    const { notifier, transport, count } = setup(alerts([A], 5_000), (request) => (request.nthToUrl <= 2 ? never() : 200), { maxPendingPerWebhook: 3, maxInFlightPerWebhook: 1 });
    notifier.notify(alert(1));
    await vi.advanceTimersByTimeAsync(0);
    for (let n = 2; n <= 4; n++) notifier.notify(alert(n));
    expect(notifier.pending).toBe(4);
    await vi.advanceTimersByTimeAsync(0);
    expect(numbers(transport.requests)).toEqual([1]);
    // 1 times out; its retry would make 4 waiting, so the oldest (1 itself) goes.
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await count('dropped')).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(numbers(transport.requests)).toEqual([1, 2, 3, 4, 2]);
    expect(await count('delivered')).toBe(3);
  });

  it('lets a hung receiver hold up no other webhook', async () => {
    const { notifier, transport } = setup(alerts([A, B]), (request) => (request.url === A ? never() : 200));
    for (let n = 1; n <= 5; n++) notifier.notify(alert(n));
    await vi.advanceTimersByTimeAsync(0);
    expect(numbers(transport.requests.filter((request) => request.url === B))).toEqual([1, 2, 3, 4, 5]);
    expect(transport.requests.filter((request) => request.url === A)).toHaveLength(2);
  });

  it('refuses a bound that is not a positive integer', () => {
    expect(() => setup(alerts([A]), undefined, { maxPendingPerWebhook: 0 })).toThrow(/maxPendingPerWebhook must be a positive integer, got 0/);
  });
});

describe('WebhookNotifier: reload', () => {
  it('sends alerts raised after a reload to the new webhooks, and finishes queued deliveries where they were going', async () => {
    const { notifier, transport } = setup(alerts([A]), (request) => (request.url === A && request.nthToUrl === 1 ? 500 : 200));
    notifier.notify(alert(1));
    await vi.advanceTimersByTimeAsync(0); // A: 500, retry in 1 s
    notifier.setConfig(alerts([B]));
    notifier.notify(alert(2));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(transport.requests.map((request) => [request.url, numbers([request])[0]])).toEqual([
      [A, 1],
      [B, 2],
      [A, 1],
    ]);
    notifier.setConfig(alerts([]));
    expect(notifier.enabled).toBe(false);
    notifier.notify(alert(3));
    await vi.advanceTimersByTimeAsync(5_000);
    expect(transport.requests).toHaveLength(3);
  });

  it('applies a new timeout to the next attempt', async () => {
    const { notifier, sentAt } = setup(alerts([A], 10_000), () => never());
    notifier.notify(alert());
    await vi.advanceTimersByTimeAsync(0);
    notifier.setConfig(alerts([A], 500));
    await vi.advanceTimersByTimeAsync(10_000 + 1_000 + 500 + 2_000);
    expect(sentAt).toEqual([0, 11_000, 13_500]);
  });
});

describe('WebhookNotifier: close', () => {
  it('aborts deliveries in flight, drops queued ones, clears its timers and closes the transport', async () => {
    const { notifier, transport, count, logs } = setup(alerts([A]), () => never());
    for (let n = 1; n <= 5; n++) notifier.notify(alert(n));
    await vi.advanceTimersByTimeAsync(0);
    await notifier.close();
    expect(transport.closed).toBe(true);
    expect(await count('dropped')).toBe(5);
    expect(notifier.pending).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(logs).toContainEqual(expect.objectContaining({ dropped: 5, msg: 'alerts not delivered: portcullis is stopping' }));
    notifier.notify(alert(6));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(transport.requests).toHaveLength(2);
  });

  it('resolves within a second even if the transport does not let go', async () => {
    const { notifier, transport } = setup(alerts([A]), () => never());
    transport.close = () => new Promise<void>(() => {});
    notifier.notify(alert());
    await vi.advanceTimersByTimeAsync(0);
    let closed = false;
    void notifier.close().then(() => (closed = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(closed).toBe(true);
  });
});
