import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { makeClientKey } from '../../../src/identity/client-key.js';
import { DecisionRates } from '../../../src/metrics/decision-rates.js';
import { RecentOffenders } from '../../../src/metrics/recent-offenders.js';

const client = (ip: string) => makeClientKey(ipaddr.process(ip), { ipv4: 24, ipv6: 64 });

describe('DecisionRates', () => {
  it('averages complete seconds of the window, per decision', () => {
    const rates = new DecisionRates();
    for (let ms = 100_000; ms < 110_000; ms += 10) rates.record('allowed', ms); // 100/s for 10 s
    for (let ms = 105_000; ms < 110_000; ms += 100) rates.record('limited', ms); // 10/s for the last 5 s
    const now = 110_500;
    expect(rates.perSecond(10, now)).toMatchObject({ allowed: 100, limited: 5, blocked: 0 });
    expect(rates.perSecond(5, now)).toMatchObject({ allowed: 100, limited: 10 });
  });

  it('forgets seconds older than its ring, even when the ring slot is reused later', () => {
    const rates = new DecisionRates();
    rates.record('banned', 1_000);
    expect(rates.perSecond(10, 2_000).banned).toBeCloseTo(0.1);
    expect(rates.perSecond(10, 61_500).banned).toBe(0);
    rates.record('banned', 61_000);
    expect(rates.perSecond(10, 62_000).banned).toBeCloseTo(0.1);
  });
});

describe('RecentOffenders', () => {
  it('ranks addresses and prefixes by refusals in the window and says which refusal is a first', () => {
    const offenders = new RecentOffenders(60_000);
    expect(offenders.record(client('198.51.100.7'), 'write', 0)).toBe(true);
    expect(offenders.record(client('198.51.100.7'), 'write', 10)).toBe(false);
    offenders.record(client('198.51.100.7'), '/xmlrpc.php', 20);
    offenders.record(client('198.51.100.8'), 'write', 30);
    offenders.record(client('203.0.113.1'), 'read', 40);
    expect(offenders.topAddresses(2, 100)).toEqual([
      { key: '198.51.100.7', refused: 3, lastRule: '/xmlrpc.php' },
      { key: '198.51.100.8', refused: 1, lastRule: 'write' },
    ]);
    expect(offenders.topPrefixes(1, 100)).toEqual([{ key: '198.51.100.0/24', refused: 4, lastRule: 'write' }]);
    // A new window: the tally restarts and the next refusal is a first again.
    expect(offenders.topAddresses(5, 60_040)).toEqual([]);
    expect(offenders.record(client('198.51.100.7'), 'write', 60_000)).toBe(true);
  });

  it('stays within its cap under a flood of distinct addresses', () => {
    const offenders = new RecentOffenders(60_000, 100);
    for (let i = 0; i < 5_000; i++) offenders.record(client(`10.${i >> 8}.${i & 255}.1`), 'read', i);
    expect(offenders.topAddresses(1_000, 5_000)).toHaveLength(100);
  });
});
