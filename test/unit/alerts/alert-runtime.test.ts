import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startAlerts } from '../../../src/alerts/alert-runtime.js';
import { ScriptedWebhookTransport } from '../../../src/alerts/webhook-transport.js';
import type { AlertsConfig } from '../../../src/config/schema.js';
import type { Ban } from '../../../src/escalation/ban.js';
import { BanLedger } from '../../../src/escalation/ban-ledger.js';
import { makeBan } from '../../support/ban-fixture.js';

const HOOK = 'http://hooks.test/portcullis';
const config = (webhooks: string[], attack_threshold = 50): AlertsConfig => ({ webhooks: webhooks.map((url) => ({ url, headers: {} })), attack_threshold, timeout: 5_000 });
const clock = { nowMs: () => performance.now() };
const wall = { epochMs: () => Date.now() };

function ban(target: string, extra: Partial<Ban> = {}): Ban {
  const nowMs = clock.nowMs();
  return makeBan(target, { scope: 'ip', reason: '30 strikes in 60s', startedMs: nowMs, expiresMs: nowMs + 600_000, ...extra });
}

function setup(alerts: AlertsConfig) {
  const ledger = new BanLedger({ maxBans: 2, maxHistory: 10, prefix: { ipv4: 24, ipv6: 64 } });
  const transport = new ScriptedWebhookTransport();
  const runtime = startAlerts(alerts, { ledger, clock, wall, logger: pino({ level: 'silent' }), registry: new Registry(), transport, host: 'web1' });
  const sent = () => transport.requests.map((request) => JSON.parse(request.body) as Record<string, unknown> & { event: string });
  return { ledger, transport, runtime, sent };
}

/** Refuses `perSecond` requests in each of the next `seconds` seconds, letting timers run. */
async function refuse(runtime: ReturnType<typeof setup>['runtime'], perSecond: number, seconds: number) {
  for (let i = 0; i < seconds; i++) {
    runtime.recordRefusals(perSecond, clock.nowMs());
    await vi.advanceTimersByTimeAsync(1_000);
  }
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(Date.UTC(2026, 10, 25, 10, 0, 0));
});

afterEach(() => {
  vi.useRealTimers();
});

describe('startAlerts: bans', () => {
  it('sends a ban alert for each ban the ledger records, dry-run ones marked, and none for lifts or a full ledger', async () => {
    const { ledger, runtime, sent } = setup(config([HOOK]));
    ledger.add(ban('192.0.2.7'));
    ledger.add(ban('192.0.2.8', { dryRun: true }));
    ledger.add(ban('192.0.2.9')); // refused: maxBans is 2
    ledger.lift('192.0.2.7');
    await vi.advanceTimersByTimeAsync(0);
    expect(sent().map((alert) => [alert.event, alert['ban']])).toEqual([
      ['ban', expect.objectContaining({ target: '192.0.2.7', dry_run: false, duration_seconds: 600, expires_at: '2026-11-25T10:10:00.000Z' })],
      ['ban', expect.objectContaining({ target: '192.0.2.8', dry_run: true })],
    ]);
    expect(sent()[0]).toMatchObject({ source: 'portcullis', host: 'web1', at: '2026-11-25T10:00:00.000Z' });
    await runtime.close();
  });

  it('stops following the ledger once closed', async () => {
    const { ledger, runtime, transport } = setup(config([HOOK]));
    await runtime.close();
    ledger.add(ban('192.0.2.7'));
    await vi.advanceTimersByTimeAsync(10_000);
    expect(transport.requests).toEqual([]);
  });
});

describe('startAlerts: attacks', () => {
  it('sends attack_started when refusals reach the threshold and attack_ended after a quiet minute', async () => {
    const { runtime, sent } = setup(config([HOOK], 50));
    await refuse(runtime, 40, 20);
    expect(sent()).toEqual([]);
    await refuse(runtime, 200, 20);
    expect(sent().map((alert) => alert.event)).toEqual(['attack_started']);
    expect(sent()[0]?.['attack']).toMatchObject({ threshold: 50 });
    await vi.advanceTimersByTimeAsync(59_000);
    expect(sent().map((alert) => alert.event)).toEqual(['attack_started']);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(sent().map((alert) => alert.event)).toEqual(['attack_started', 'attack_ended']);
    expect(sent()[1]?.['attack']).toMatchObject({ peak_refused_per_second: 200, threshold: 50 });
    await runtime.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('applies a reloaded threshold', async () => {
    const { runtime, sent } = setup(config([HOOK], 50));
    await refuse(runtime, 30, 12);
    runtime.setConfig(config([HOOK], 20));
    await refuse(runtime, 30, 1);
    expect(sent().map((alert) => alert.event)).toEqual(['attack_started']);
    await runtime.close();
  });
});

describe('startAlerts: no webhooks', () => {
  it('runs no timer and sends nothing, until a reload adds a webhook', async () => {
    const { ledger, runtime, transport, sent } = setup(config([]));
    expect(vi.getTimerCount()).toBe(0);
    await refuse(runtime, 1_000, 15);
    ledger.add(ban('192.0.2.7'));
    await vi.advanceTimersByTimeAsync(120_000);
    expect(transport.requests).toEqual([]);

    runtime.setConfig(config([HOOK]));
    expect(vi.getTimerCount()).toBe(1); // the once-a-second attack poll
    ledger.add(ban('192.0.2.8'));
    await refuse(runtime, 1_000, 1);
    expect(sent().map((alert) => alert.event)).toEqual(['ban', 'attack_started']);

    runtime.setConfig(config([]));
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(0);
    await runtime.close();
  });
});
