import { describe, expect, it } from 'vitest';
import { ALERT_VERSION, createAttackAlert, createBanAlert } from '../../../src/alerts/alert.js';
import type { Ban } from '../../../src/escalation/ban.js';
import { makeBan } from '../../support/ban-fixture.js';

const origin = { nowEpochMs: Date.UTC(2026, 10, 25, 10, 15, 0), host: 'web1' };
/** The monotonic clock reads 5,000 ms at `origin.nowEpochMs`. */
const toEpochMs = (monotonicMs: number) => origin.nowEpochMs + (monotonicMs - 5_000);

function ban(extra: Partial<Ban> = {}): Ban {
  return makeBan('192.0.2.7', { prefix: '192.0.2.0/24', reason: '30 strikes in 60s (last: rule write)', startedMs: 5_000, expiresMs: 605_000, ...extra });
}

describe('ban alerts', () => {
  it('carry the envelope and the ban, with wall-clock times', () => {
    expect(createBanAlert(ban(), toEpochMs, origin)).toEqual({
      source: 'portcullis',
      version: ALERT_VERSION,
      event: 'ban',
      at: '2026-11-25T10:15:00.000Z',
      host: 'web1',
      summary: 'web1: banned 192.0.2.7 for 10m: 30 strikes in 60s (last: rule write)',
      ban: {
        target: '192.0.2.7',
        scope: 'ip',
        reason: '30 strikes in 60s (last: rule write)',
        source: 'strikes',
        duration_seconds: 600,
        expires_at: '2026-11-25T10:25:00.000Z',
        nth: 1,
        dry_run: false,
      },
    });
  });

  it('say "would ban" for a dry run, name a network, and count repeat bans', () => {
    const alert = createBanAlert(ban({ target: '192.0.2.0/24', scope: 'prefix', source: 'prefix', reason: '3 banned addresses in 192.0.2.0/24', expiresMs: 5_000 + 5_400_000, nth: 2, dryRun: true }), toEpochMs, origin);
    expect(alert.summary).toBe('web1: would ban (dry run) network 192.0.2.0/24 for 1h30m (2nd ban): 3 banned addresses in 192.0.2.0/24');
    expect(alert.ban).toMatchObject({ scope: 'prefix', source: 'prefix', dry_run: true, nth: 2, duration_seconds: 5_400 });
    expect(createBanAlert(ban({ nth: 11 }), toEpochMs, origin).summary).toContain('(11th ban)');
    expect(createBanAlert(ban({ nth: 23 }), toEpochMs, origin).summary).toContain('(23rd ban)');
  });

  it('survive JSON: the payload is plain data', () => {
    const alert = createBanAlert(ban(), toEpochMs, origin);
    expect(JSON.parse(JSON.stringify(alert))).toEqual(alert);
  });
});

describe('attack alerts', () => {
  it('report the rate and threshold when an attack starts', () => {
    expect(createAttackAlert({ kind: 'attack_started', ratePerSec: 812.34, threshold: 50 }, origin)).toEqual({
      source: 'portcullis',
      version: ALERT_VERSION,
      event: 'attack_started',
      at: '2026-11-25T10:15:00.000Z',
      host: 'web1',
      summary: 'web1: under attack: 812.3 refused requests/s (threshold 50/s)',
      attack: { refused_per_second: 812.3, threshold: 50 },
    });
  });

  it('report the peak and duration when it ends', () => {
    const alert = createAttackAlert({ kind: 'attack_ended', ratePerSec: 3, threshold: 50, peakRatePerSec: 812.36, durationMs: 725_400 }, origin);
    expect(alert.event).toBe('attack_ended');
    expect(alert.summary).toBe('web1: attack over after 12m5s, peak 812.4 refused requests/s');
    expect(alert.attack).toEqual({ refused_per_second: 3, threshold: 50, peak_refused_per_second: 812.4, duration_seconds: 725 });
  });
});
