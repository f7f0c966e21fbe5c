import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY_FILE, parsePolicy } from '../../../src/config/policy-loader.js';
import { assembleEngine, type AssembledEngine } from '../../../src/engine/engine-assembly.js';
import { makeClientKey, parseClientAddress } from '../../../src/identity/client-key.js';

/** One request record of a scenario, on its own timestamp (CrowdSec's style: replayed, never slept). */
interface Step {
  readonly atMs: number;
  readonly ip: string;
  readonly method: string;
  readonly target: string;
}

/** `count` requests from `ip`, one every `everyMs` from `fromMs`. */
function flood(ip: string, fromMs: number, everyMs: number, count: number, method = 'POST', target = '/xmlrpc.php'): Step[] {
  return Array.from({ length: count }, (_, i) => ({ atMs: fromMs + i * everyMs, ip, method, target }));
}

/** Runs the steps in time order through the engine and records every decision's action (and ban target). */
function replay(assembled: AssembledEngine, steps: Step[]): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const ordered = [...steps].sort((a, b) => a.atMs - b.atMs);
  for (const step of ordered) {
    const client = makeClientKey(parseClientAddress(step.ip)!, { ipv4: 24, ipv6: 64 });
    const decision = assembled.engine.decide({ client, method: step.method, target: step.target }, step.atMs);
    const label = decision.action === 'ban' ? `ban ${decision.target}` : decision.action;
    seen.set(step.ip, [...(seen.get(step.ip) ?? []), label]);
  }
  return seen;
}

/**
 * The seed's attack, replayed through the engine exactly as `serve` assembles
 * it from the shipped policy, with no I/O: two addresses of one /24 POST to
 * /xmlrpc.php every 10 ms, two neighbours of the same /24 take over a second
 * later, a visitor from elsewhere browses throughout; ten minutes after the
 * bans end, the neighbours try again.
 */
describe('the engine assembly, on the seed attack', () => {
  const config = parsePolicy(readFileSync(DEFAULT_POLICY_FILE, 'utf8'), DEFAULT_POLICY_FILE);
  const attack = [
    ...flood('203.0.113.10', 0, 10, 100),
    ...flood('203.0.113.11', 0, 10, 100),
    ...flood('203.0.113.12', 1_000, 10, 50),
    ...flood('203.0.113.13', 1_000, 10, 50),
    ...flood('198.51.100.7', 0, 1_000, 5, 'GET', '/'),
  ];

  it('bans both flooders and their /24 at the sixth blocked request (5 strikes each, 30 to a ban)', () => {
    const assembled = assembleEngine(config);
    const seen = replay(assembled, attack);
    expect(seen.get('203.0.113.10')?.slice(0, 7)).toEqual(['block', 'block', 'block', 'block', 'block', 'block', 'ban 203.0.113.10']);
    const bans = assembled.ledger.active().map((ban) => ({ target: ban.target, startedMs: ban.startedMs, expiresMs: ban.expiresMs, nth: ban.nth }));
    expect(bans).toEqual(
      expect.arrayContaining([
        { target: '203.0.113.10', startedMs: 50, expiresMs: 50 + 600_000, nth: 1 },
        { target: '203.0.113.11', startedMs: 50, expiresMs: 50 + 600_000, nth: 1 },
        { target: '203.0.113.0/24', startedMs: 50, expiresMs: 50 + 600_000, nth: 1 },
      ]),
    );
    expect(bans).toHaveLength(3);
  });

  it('never lets the neighbours through while their /24 is banned, and never touches the visitor', () => {
    const seen = replay(assembleEngine(config), attack);
    for (const neighbour of ['203.0.113.12', '203.0.113.13']) expect(new Set(seen.get(neighbour))).toEqual(new Set(['ban 203.0.113.0/24']));
    expect(seen.get('198.51.100.7')).toEqual(['allow', 'allow', 'allow', 'allow', 'allow']);
  });

  it('bans the /24 for twice as long when it comes back after its ban', () => {
    const assembled = assembleEngine(config);
    const back = 50 + 600_000 + 60_000;
    replay(assembled, [...attack, ...flood('203.0.113.12', back, 10, 20), ...flood('203.0.113.13', back, 10, 20)]);
    const prefix = assembled.ledger.get('203.0.113.0/24', back + 1_000);
    expect(prefix).toMatchObject({ startedMs: back + 50, expiresMs: back + 50 + 1_200_000, nth: 2 });
  });

  it('never bans what it is told never to ban (the upstream), however it floods', () => {
    const assembled = assembleEngine(config, { alsoNeverBan: ['203.0.113.10'] });
    const seen = replay(assembled, flood('203.0.113.10', 0, 10, 100));
    expect(seen.get('203.0.113.10')?.every((label) => label === 'block')).toBe(true);
    expect(assembled.ledger.active()).toEqual([]);
  });
});
