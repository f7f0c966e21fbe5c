import http from 'node:http';
import net from 'node:net';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createAttackAlert, type Alert } from '../../src/alerts/alert.js';
import { startAlerts } from '../../src/alerts/alert-runtime.js';
import { WebhookNotifier, type WebhookNotifierOptions } from '../../src/alerts/webhook-notifier.js';
import { UndiciWebhookTransport, type WebhookRequest, type WebhookTransport } from '../../src/alerts/webhook-transport.js';
import type { AlertsConfig } from '../../src/config/schema.js';
import { systemClock } from '../../src/core/clock.js';
import { BanLedger } from '../../src/escalation/ban-ledger.js';
import { AlertMetrics } from '../../src/metrics/alert-metrics.js';

/** What a receiver saw of one request. */
interface Received {
  readonly method: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/**
 * A webhook receiver on 127.0.0.1, port 0. `answer` picks the status for the
 * nth request (1-based), or 'hang' to never answer.
 */
async function startReceiver(answer: (nth: number) => number | 'hang' = () => 200) {
  const received: Received[] = [];
  const waiters: (() => void)[] = [];
  let open = 0;
  const server = http.createServer((req, res) => {
    open++;
    res.on('close', () => open--);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      received.push({ method: req.method ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      for (const wake of waiters.splice(0)) wake();
      const status = answer(received.length);
      if (status !== 'hang') res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    /** Requests being answered (or hung) right now. */
    open: () => open,
    /** Resolves once `count` requests have arrived; rejects after `timeoutMs`. */
    async waitFor(count: number, timeoutMs: number): Promise<void> {
      const deadline = performance.now() + timeoutMs;
      while (received.length < count) {
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`receiver got ${received.length} requests, expected ${count} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function config(urls: string[], timeout = 5_000): AlertsConfig {
  return { webhooks: urls.map((url) => ({ url, headers: { authorization: 'Bearer t0ken' } })), attack_threshold: 50, timeout };
}

function alert(n = 1): Alert {
  return createAttackAlert({ kind: 'attack_started', ratePerSec: n, threshold: 50 }, { nowEpochMs: Date.now(), host: 'web1' });
}

const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function notifier(alerts: AlertsConfig, options: Partial<WebhookNotifierOptions> = {}) {
  const registry = new Registry();
  const instance = new WebhookNotifier(alerts, { logger: pino({ level: 'silent' }), metrics: new AlertMetrics(registry), ...options });
  cleanups.push(() => instance.close());
  const count = async (result: string) => {
    const values = (await registry.getSingleMetric('portcullis_alerts_total')?.get())?.values ?? [];
    return values.filter((value) => value.labels['result'] === result).reduce((sum, value) => sum + value.value, 0);
  };
  return { notifier: instance, count };
}

async function receiver(answer?: (nth: number) => number | 'hang') {
  const started = await startReceiver(answer);
  cleanups.push(() => started.close());
  return started;
}

/**
 * The real undici transport, counting the POSTs it is asked to send and how
 * many are open at once: what "cheap" means for notify() is that a burst
 * sends nothing while it runs and then at most the in-flight cap at a time.
 * (How long notify takes is a performance figure, for bench/, not a test.)
 */
class CountingTransport implements WebhookTransport {
  readonly #real = new UndiciWebhookTransport();
  posts = 0;
  open = 0;
  maxOpen = 0;

  async post(request: WebhookRequest, signal: AbortSignal): Promise<number> {
    this.posts++;
    this.open++;
    this.maxOpen = Math.max(this.maxOpen, this.open);
    try {
      return await this.#real.post(request, signal);
    } finally {
      this.open--;
    }
  }

  close(): Promise<void> {
    return this.#real.close();
  }
}

/** Calls `notify` `calls` times in one synchronous burst. */
function burst(target: WebhookNotifier, calls: number): void {
  for (let n = 0; n < calls; n++) target.notify(alert(n));
}

describe('webhook alerts to a real HTTP receiver', () => {
  it('delivers the alert as a JSON POST with the configured headers within a second', async () => {
    const hook = await receiver();
    const { notifier: sender, count } = notifier(config([hook.url]));
    const sent = alert(812);
    sender.notify(sent);
    await hook.waitFor(1, 1_000);
    const [got] = hook.received;
    expect(got?.method).toBe('POST');
    expect(got?.headers['content-type']).toBe('application/json');
    expect(got?.headers['authorization']).toBe('Bearer t0ken');
    expect(JSON.parse(got?.body ?? '')).toEqual(sent);
    await expect.poll(() => count('delivered')).toBe(1);
  });

  it('delivers on the third attempt to a receiver that answers 500 twice', async () => {
    const hook = await receiver((nth) => (nth <= 2 ? 500 : 200));
    // Short backoff: the waits themselves are unit-tested on fake timers.
    const { notifier: sender, count } = notifier(config([hook.url]), { retryBaseMs: 50 });
    sender.notify(alert(3));
    await hook.waitFor(3, 5_000);
    expect(new Set(hook.received.map((request) => request.body)).size).toBe(1);
    await expect.poll(() => count('delivered')).toBe(1);
    expect(await count('failed')).toBe(0);
    expect(sender.pending).toBe(0);
  });

  it('stays cheap and bounded when the receiver is down', async () => {
    const port = await closedPort();
    const transport = new CountingTransport();
    const { notifier: sender, count } = notifier(config([`http://127.0.0.1:${port}/hook`]), { retryBaseMs: 50, transport });
    burst(sender, 5_000);
    // The burst only queued: no request was started while it ran.
    expect(transport.posts).toBe(0);
    // 1000 waiting at most, plus 2 in flight.
    expect(sender.pending).toBeLessThanOrEqual(1_002);
    expect(await count('dropped')).toBeGreaterThanOrEqual(3_998);
    // Refused connections fail fast, are retried, then given up on.
    await expect.poll(() => count('failed'), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(transport.maxOpen).toBe(2);
  });

  it('stays cheap and bounded when the receiver hangs, keeps 2 requests open to it, and closes within a second', async () => {
    const hook = await receiver(() => 'hang');
    const transport = new CountingTransport();
    const { notifier: sender } = notifier(config([hook.url], 30_000), { transport });
    burst(sender, 5_000);
    expect(transport.posts).toBe(0);
    await hook.waitFor(2, 1_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(hook.open()).toBe(2);
    expect(transport.posts).toBe(2);
    expect(sender.pending).toBe(1_000);

    const started = performance.now();
    await sender.close();
    expect(performance.now() - started).toBeLessThan(1_000);
    // The aborted requests' connections are gone.
    await expect.poll(() => hook.open(), { timeout: 1_000 }).toBe(0);
  });

  it('gives up on an attempt after alerts.timeout and tries again', async () => {
    const hook = await receiver((nth) => (nth === 1 ? 'hang' : 200));
    const { notifier: sender, count } = notifier(config([hook.url], 200), { retryBaseMs: 50 });
    const started = performance.now();
    sender.notify(alert());
    await hook.waitFor(2, 3_000);
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
    await expect.poll(() => count('delivered')).toBe(1);
  });

  it('sends a ban alert when the ledger records a ban (startAlerts, end to end)', async () => {
    const hook = await receiver();
    const ledger = new BanLedger({ maxBans: 10, maxHistory: 10, prefix: { ipv4: 24, ipv6: 64 } });
    const runtime = startAlerts(config([hook.url]), { ledger, clock: systemClock, wall: { epochMs: () => Date.now() }, logger: pino({ level: 'silent' }), registry: new Registry() });
    cleanups.push(() => runtime.close());
    const nowMs = systemClock.nowMs();
    ledger.add({ target: '198.51.100.9', scope: 'ip', family: 4, prefix: '198.51.100.0/24', source: 'strikes', reason: '30 strikes in 60s', startedMs: nowMs, expiresMs: nowMs + 600_000, nth: 1, dryRun: false });
    await hook.waitFor(1, 1_000);
    const body = JSON.parse(hook.received[0]?.body ?? '') as { event: string; ban: { target: string; expires_at: string } };
    expect(body.event).toBe('ban');
    expect(body.ban.target).toBe('198.51.100.9');
    expect(Math.abs(Date.parse(body.ban.expires_at) - (Date.now() + 600_000))).toBeLessThan(5_000);
  });
});
