import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/config/policy-loader.js';
import { assembleEngine, type AssembledEngine } from '../../src/engine/engine-assembly.js';
import { makeClientKey, parseClientAddress } from '../../src/identity/client-key.js';

const README = readFileSync(join(import.meta.dirname, '../../README.md'), 'utf8');
const SECTION = '### Migrating from fail2ban, mod_evasive or nginx `limit_req`';

/** The first ```yaml block under the `#### heading` of the migration section. */
function policyUnder(heading: string): string {
  const section = README.slice(README.indexOf(SECTION));
  expect(README.indexOf(SECTION), SECTION).toBeGreaterThanOrEqual(0);
  const start = section.indexOf(`\n#### ${heading}\n`);
  expect(start, heading).toBeGreaterThanOrEqual(0);
  const block = /```yaml\n([\s\S]*?)```/.exec(section.slice(start));
  expect(block, `a yaml block under ${heading}`).not.toBeNull();
  return (block as RegExpExecArray)[1] as string;
}

interface Step {
  readonly atMs: number;
  readonly ip: string;
  readonly method: string;
  readonly target: string;
}

/** `count` requests from `ip`, one every `everyMs` from `fromMs`. */
function series(ip: string, fromMs: number, everyMs: number, count: number, method = 'GET', target: (i: number) => string = () => '/'): Step[] {
  return Array.from({ length: count }, (_, i) => ({ atMs: fromMs + i * everyMs, ip, method, target: target(i) }));
}

/** The engine's actions for `steps`, in order, run-length encoded: `allow×333 limit ban×66`. */
function replay(engine: AssembledEngine, steps: readonly Step[]): string {
  const runs: [string, number][] = [];
  for (const step of steps) {
    const client = makeClientKey(parseClientAddress(step.ip)!, { ipv4: 24, ipv6: 64 });
    const { action } = engine.engine.decide({ client, method: step.method, target: step.target }, step.atMs);
    const last = runs.at(-1);
    if (last?.[0] === action) last[1]++;
    else runs.push([action, 1]);
  }
  return runs.map(([action, n]) => (n === 1 ? action : `${action}×${n}`)).join(' ');
}

/** The README's example, parsed strictly and assembled as `serve` would. */
function engineFor(heading: string): AssembledEngine {
  return assembleEngine(parsePolicy(policyUnder(heading), `README ${heading}`));
}

const MINUTE = 60_000;

/**
 * The README's migration guides: each example policy is valid, and behaves
 * as the text under it says, replayed through the engine on its own clock.
 */
describe('README: migrating from fail2ban', () => {
  const heading = 'fail2ban `http-get-dos` / `http-post-dos`';

  it('bans a client at 10 requests a second at its 334th request, for 10 minutes, then 20', () => {
    const engine = engineFor(heading);
    expect(replay(engine, series('203.0.113.5', 0, 100, 400))).toBe('allow×333 limit ban×66');
    expect(engine.ledger.active().map((ban) => [ban.target, ban.startedMs, ban.expiresMs - ban.startedMs])).toEqual([['203.0.113.5', 33_300, 10 * MINUTE]]);
    const again = 700_000;
    expect(replay(engine, series('203.0.113.5', again, 100, 400))).toBe('allow×333 limit ban×66');
    expect(engine.ledger.active().map((ban) => [ban.expiresMs - ban.startedMs, ban.nth])).toEqual([[20 * MINUTE, 2]]);
  });

  it('never refuses a reader at one page a second for an hour', () => {
    expect(replay(engineFor(heading), series('198.51.100.7', 0, 1_000, 3_600))).toBe('allow×3600');
  });
});

describe('README: migrating from mod_evasive', () => {
  const heading = 'mod_evasive';

  it('refuses the 100th of 200 objects at 100 a second, bans for 10 seconds, then serves again', () => {
    const engine = engineFor(heading);
    const flood = series('203.0.113.5', 0, 10, 200, 'GET', (i) => `/img/${i}.png`);
    expect(replay(engine, [...flood, ...series('203.0.113.5', 11_100, 1_000, 2)])).toBe('allow×99 limit ban×100 allow×2');
  });

  it('refuses and bans a third POST to /wp-login.php within a second', () => {
    expect(replay(engineFor(heading), series('203.0.113.6', 0, 100, 4, 'POST', () => '/wp-login.php'))).toBe('allow×2 limit ban');
  });

  it('never limits the whitelisted /24', () => {
    expect(replay(engineFor(heading), series('192.0.2.9', 0, 10, 200, 'GET', (i) => `/img/${i}.png`))).toBe('allow×200');
  });
});

describe('README: migrating from nginx limit_req', () => {
  const heading = 'nginx `limit_req` / `limit_conn`';

  it('lets 21 of 25 through at once (burst=20 nodelay), and 10 more a second later', () => {
    const engine = engineFor(heading);
    expect(replay(engine, [...series('203.0.113.7', 0, 0, 25), ...series('203.0.113.7', 1_000, 0, 12)])).toBe('allow×21 limit×4 allow×10 limit×2');
  });

  it('refuses the 7th POST to /wp-login.php at once, with 429, and caps requests in flight at 10 per client', () => {
    expect(replay(engineFor(heading), series('203.0.113.8', 0, 0, 8, 'POST', () => '/wp-login.php'))).toBe('allow×6 limit×2');
    const config = parsePolicy(policyUnder(heading), 'README nginx');
    expect(config.limits.find((rule) => rule.name === 'login')?.status).toBe(429);
    expect(config.concurrency.per_client_max).toBe(10);
    expect(config.escalation.enabled).toBe(false);
  });
});
