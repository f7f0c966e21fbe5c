import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import { ManualClock } from '../../../src/core/clock.js';
import { BanLedger, type BanChange } from '../../../src/escalation/ban-ledger.js';
import { Escalator } from '../../../src/escalation/escalator.js';
import { NeverBanList } from '../../../src/escalation/never-ban-list.js';
import { makeClientKey, type ClientKey } from '../../../src/identity/client-key.js';

const PREFIX = { ipv4: 24, ipv6: 64 };
const client = (ip: string): ClientKey => makeClientKey(ipaddr.process(ip), PREFIX);

function setup(escalationYaml = 'escalation: { strikes: 3, window: 60s, ban: 10m, factor: 2, max_ban: 1h, forget_after: 1d, prefix_after: 2 }', neverBan: string[] = []) {
  const config = parsePolicy(escalationYaml, 'test.yaml');
  const clock = new ManualClock(1_000_000);
  const ledger = new BanLedger({ maxBans: config.escalation.max_bans, maxHistory: 100, prefix: PREFIX });
  const changes: BanChange[] = [];
  ledger.onChange((change) => changes.push(change));
  const escalator = new Escalator({ config: config.escalation, ledger, neverBan: new NeverBanList(neverBan), maxTracked: 1000 });
  /** Strikes `ip` until a strike returns bans; returns them. Bounded. */
  const offend = (ip: string) => {
    for (let i = 0; i < 100; i++) {
      const bans = escalator.strike(client(ip), 1, 'write', clock.nowMs());
      if (bans.length > 0) return bans;
    }
    return [];
  };
  return { clock, ledger, escalator, changes, offend };
}

describe('Escalator', () => {
  it('bans an address after `strikes` strikes, for `ban`', () => {
    const { offend, ledger, clock } = setup();
    const [ban] = offend('198.51.100.1');
    expect(ban).toMatchObject({ target: '198.51.100.1', scope: 'ip', nth: 1, source: 'strikes', dryRun: false });
    expect(ban!.expiresMs - clock.nowMs()).toBe(600_000);
    expect(ledger.find(client('198.51.100.1'), clock.nowMs())?.target).toBe('198.51.100.1');
    expect(ledger.find(client('198.51.100.2'), clock.nowMs())).toBeNull();
  });

  it('doubles the ban of a recidivist up to max_ban, and forgets after forget_after', () => {
    const { offend, clock } = setup();
    const lengths: number[] = [];
    for (let round = 0; round < 5; round++) {
      const [ban] = offend('198.51.100.1');
      lengths.push(ban!.expiresMs - ban!.startedMs);
      clock.set(ban!.expiresMs + 1);
    }
    expect(lengths).toEqual([600_000, 1_200_000, 2_400_000, 3_600_000, 3_600_000]);
    clock.advance(86_400_000 + 1);
    const [fresh] = offend('198.51.100.1');
    expect(fresh).toMatchObject({ nth: 1 });
    expect(fresh!.expiresMs - fresh!.startedMs).toBe(600_000);
  });

  it('bans the prefix when prefix_after of its addresses are banned at once, so a third address is refused', () => {
    const { offend, ledger, clock } = setup();
    expect(offend('198.51.100.1')).toHaveLength(1);
    const bans = offend('198.51.100.2');
    expect(bans.map((ban) => [ban.target, ban.scope])).toEqual([
      ['198.51.100.2', 'ip'],
      ['198.51.100.0/24', 'prefix'],
    ]);
    expect(ledger.find(client('198.51.100.77'), clock.nowMs())?.target).toBe('198.51.100.0/24');
    expect(ledger.find(client('198.51.101.1'), clock.nowMs())).toBeNull();
  });

  it('does not count expired bans toward a prefix ban', () => {
    const { offend, ledger, clock } = setup();
    offend('198.51.100.1');
    clock.advance(600_001);
    ledger.sweep(clock.nowMs());
    expect(offend('198.51.100.2')).toHaveLength(1);
  });

  it('groups IPv6 by /64', () => {
    const { offend } = setup();
    offend('2001:db8:1:2::1');
    expect(offend('2001:db8:1:2::abcd').map((ban) => ban.target)).toEqual(['2001:db8:1:2::abcd', '2001:db8:1:2::/64']);
  });

  it('never bans protected addresses, nor a prefix that holds one', () => {
    const { offend, escalator, clock } = setup(undefined, ['198.51.100.5', '203.0.113.0/24']);
    expect(offend('198.51.100.5')).toEqual([]);
    expect(offend('203.0.113.9')).toEqual([]);
    offend('198.51.100.1');
    // Two addresses of the /24 are banned, but the /24 holds a protected address.
    expect(offend('198.51.100.2').map((ban) => ban.scope)).toEqual(['ip']);
    expect(escalator.strikesOf(client('198.51.100.5'), clock.nowMs())).toBe(0);
  });

  it('records but does not enforce in dry run, and reports the prefix ban it would make', () => {
    const { offend, ledger, clock, changes } = setup('escalation: { strikes: 3, dry_run: true }');
    offend('198.51.100.1');
    const bans = offend('198.51.100.2');
    expect(bans.map((ban) => [ban.scope, ban.dryRun])).toEqual([
      ['ip', true],
      ['prefix', true],
    ]);
    expect(ledger.find(client('198.51.100.1'), clock.nowMs())).toBeNull();
    expect(changes.filter((change) => change.kind === 'added')).toHaveLength(3);
  });

  it('does nothing when disabled', () => {
    const { offend } = setup('escalation: { enabled: false }');
    expect(offend('198.51.100.1')).toEqual([]);
  });

  it('refuses, and reports, a ban beyond max_bans', () => {
    const { offend, changes } = setup('escalation: { strikes: 1, max_bans: 1, prefix_after: 0 }');
    expect(offend('198.51.100.1')).toHaveLength(1);
    expect(offend('203.0.113.1')).toEqual([]);
    expect(changes.at(-1)).toMatchObject({ kind: 'full', ban: { target: '203.0.113.1' } });
  });
});

describe('BanLedger', () => {
  it('expires bans lazily on lookup and in sweeps, reporting each once', () => {
    const { offend, ledger, clock, changes } = setup('escalation: { strikes: 1, ban: 1m, prefix_after: 0 }');
    offend('198.51.100.1');
    offend('198.51.100.9');
    clock.advance(60_000);
    expect(ledger.find(client('198.51.100.1'), clock.nowMs())).toBeNull();
    expect(ledger.sweep(clock.nowMs()).map((ban) => ban.target)).toEqual(['198.51.100.9']);
    expect(changes.filter((change) => change.kind === 'removed').map((change) => change.kind === 'removed' && change.why)).toEqual(['expired', 'expired']);
    expect(ledger.size).toBe(0);
  });

  it('finds networks of other lengths banned by hand', () => {
    const { ledger, clock } = setup();
    ledger.add({ target: '198.0.0.0/8', scope: 'prefix', family: 4, prefix: null, source: 'manual', reason: 'test', startedMs: 0, expiresMs: clock.nowMs() + 1000, nth: 1, dryRun: false });
    expect(ledger.find(client('198.51.100.1'), clock.nowMs())?.target).toBe('198.0.0.0/8');
    expect(ledger.lift('198.0.0.0/8')?.target).toBe('198.0.0.0/8');
    expect(ledger.find(client('198.51.100.1'), clock.nowMs())).toBeNull();
  });

  it('keeps strike counts across a reload that keeps window and threshold, and starts over when they change', () => {
    const { escalator, clock } = setup();
    const config = parsePolicy('escalation: { strikes: 3, window: 60s, ban: 20m, max_ban: 2h }', 'test.yaml').escalation;
    escalator.strike(client('198.51.100.1'), 2, 'write', clock.nowMs());
    escalator.reconfigure(config, new NeverBanList([]));
    expect(escalator.strikesOf(client('198.51.100.1'), clock.nowMs())).toBe(2);
    expect(escalator.nextBan('198.51.100.1', clock.nowMs())).toEqual({ nth: 1, durationMs: 1_200_000 });
    escalator.reconfigure({ ...config, strikes: 5 }, new NeverBanList(['198.51.100.0/24']));
    expect(escalator.strikesOf(client('198.51.100.1'), clock.nowMs())).toBe(0);
    expect(escalator.protects(client('198.51.100.1').addr)).toBe(true);
  });

  it('reports every strike it counts, and none for protected addresses', () => {
    const config = parsePolicy('escalation: { strikes: 3 }', 'test.yaml');
    const ledger = new BanLedger({ maxBans: 10, maxHistory: 10, prefix: PREFIX });
    const seen: [string, number][] = [];
    const escalator = new Escalator({ config: config.escalation, ledger, neverBan: new NeverBanList(['192.0.2.1']), maxTracked: 10, onStrike: (rule, weight) => seen.push([rule, weight]) });
    escalator.strike(client('198.51.100.1'), 5, '/xmlrpc.php', 0);
    escalator.strike(client('192.0.2.1'), 1, 'write', 0);
    expect(seen).toEqual([['/xmlrpc.php', 5]]);
  });
});

