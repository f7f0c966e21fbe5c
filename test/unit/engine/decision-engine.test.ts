import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import { ManualClock } from '../../../src/core/clock.js';
import type { Decision } from '../../../src/engine/decision.js';
import { DecisionEngine } from '../../../src/engine/decision-engine.js';
import { makeClientKey, type ClientKey } from '../../../src/identity/client-key.js';
import { MemoryBucketStore } from '../../../src/limiter/stores/memory-bucket-store.js';
import { compilePolicy } from '../../../src/policy/compiled-policy.js';

const POLICY = `
clients:
  allow: ["192.0.2.250/32"]
limits:
  - name: read
    methods: [GET, HEAD]
    per_ip: { rate: 2/s, burst: 4 }
    per_prefix: { rate: 4/s, burst: 6 }
  - name: write
    methods: [POST]
    per_ip: { rate: 1/s, burst: 2 }
  - name: login
    methods: [POST]
    paths: ["/wp-login.php"]
    per_ip: { rate: 1/min, burst: 1 }
    status: 403
  - name: other
    methods: [OTHER]
    per_ip: { rate: 1/s, burst: 1 }
block:
  - path: /xmlrpc.php
  - path_prefix: /wp-admin/install
    methods: [GET]
    status: 404
`;

function client(ip: string): ClientKey {
  return makeClientKey(ipaddr.process(ip), { ipv4: 24, ipv6: 64 });
}

function setup(source = POLICY) {
  const clock = new ManualClock(10_000);
  const engine = new DecisionEngine(compilePolicy(parsePolicy(source, 'test.yaml')), new MemoryBucketStore(1000));
  const decide = (ip: string, method: string, target: string): Decision => engine.decide({ client: client(ip), method, target }, clock.nowMs());
  const burstOf = (ip: string, method: string, target: string, max = 100): number => {
    for (let i = 0; i < max; i++) if (decide(ip, method, target).action !== 'allow') return i;
    return max;
  };
  return { clock, engine, decide, burstOf };
}

describe('DecisionEngine', () => {
  it('admits a burst per IP, then limits with the bucket and an honest retry time', () => {
    const { decide, burstOf, clock } = setup();
    expect(burstOf('198.51.100.1', 'GET', '/')).toBe(4);
    const refusal = decide('198.51.100.1', 'GET', '/');
    expect(refusal).toMatchObject({ action: 'limit', rule: 'read', status: 429, bucket: { scope: 'ip', burst: 4 } });
    expect(refusal.action === 'limit' && refusal.retryAfterMs).toBeCloseTo(500, 6);
    clock.advance(500);
    expect(decide('198.51.100.1', 'GET', '/').action).toBe('allow');
  });

  it('keeps GET and POST buckets independent', () => {
    const { decide, burstOf } = setup();
    expect(burstOf('198.51.100.1', 'POST', '/')).toBe(2);
    expect(decide('198.51.100.1', 'GET', '/').action).toBe('allow');
  });

  it('shares the prefix bucket between addresses of one /24, not with the next /24', () => {
    const { burstOf } = setup();
    expect(burstOf('198.51.100.1', 'GET', '/')).toBe(4);
    // The /24 allowed 6: two are left for the neighbour, though its own bucket holds 4.
    expect(burstOf('198.51.100.2', 'GET', '/')).toBe(2);
    expect(burstOf('198.51.101.1', 'GET', '/')).toBe(4);
  });

  it('applies a path rule on top of the method rule, with its own status', () => {
    const { decide } = setup();
    expect(decide('198.51.100.1', 'POST', '/wp-login.php').action).toBe('allow');
    expect(decide('198.51.100.1', 'POST', '/wp-login.php')).toMatchObject({ action: 'limit', rule: 'login', status: 403 });
    // The write bucket was charged once only: the refused login did not drain it.
    expect(decide('198.51.100.1', 'POST', '/comments').action).toBe('allow');
    expect(decide('198.51.100.1', 'POST', '/comments').action).toBe('limit');
  });

  it('matches path rules through PATH_INFO and query strings', () => {
    const { decide } = setup();
    expect(decide('198.51.100.1', 'POST', '/wp-login.php?action=login').action).toBe('allow');
    expect(decide('198.51.100.1', 'POST', '/wp-login.php/x')).toMatchObject({ action: 'limit', rule: 'login' });
  });

  it('puts methods no rule names into OTHER, case-sensitively', () => {
    const { decide } = setup();
    expect(decide('198.51.100.1', 'PROPFIND', '/').action).toBe('allow');
    expect(decide('198.51.100.1', 'get', '/')).toMatchObject({ action: 'limit', rule: 'other' });
  });

  it('blocks paths for every client and every method unless restricted', () => {
    const { decide } = setup();
    expect(decide('198.51.100.1', 'POST', '/xmlrpc.php')).toEqual({ action: 'block', rule: '/xmlrpc.php', status: 403, strikes: 1 });
    expect(decide('192.0.2.250', 'GET', '/XMLRPC.php/x')).toMatchObject({ action: 'block' });
    expect(decide('198.51.100.1', 'GET', '/wp-admin/install.php')).toMatchObject({ action: 'block', status: 404 });
    expect(decide('198.51.100.1', 'POST', '/wp-admin/install.php').action).toBe('allow');
  });

  it('never limits allowlisted clients', () => {
    const { burstOf } = setup();
    expect(burstOf('192.0.2.250', 'GET', '/', 50)).toBe(50);
  });

  it('rejects a target Apache would reject', () => {
    const { decide } = setup();
    expect(decide('198.51.100.1', 'GET', '/a%zz')).toMatchObject({ action: 'reject', status: 400 });
  });

  it('keeps bucket levels of unchanged rules across a policy swap', () => {
    const { decide, burstOf, engine } = setup();
    expect(burstOf('198.51.100.1', 'GET', '/')).toBe(4);
    engine.setPolicy(compilePolicy(parsePolicy(POLICY.replace('rate: 1/s, burst: 2', 'rate: 1/s, burst: 5'), 'test.yaml')));
    expect(decide('198.51.100.1', 'GET', '/').action).toBe('limit');
    expect(burstOf('198.51.100.1', 'POST', '/')).toBe(5);
  });

  it('groups IPv6 clients by /64', () => {
    const { burstOf } = setup();
    expect(burstOf('2001:db8:1:2::1', 'GET', '/')).toBe(4);
    expect(burstOf('2001:db8:1:2::99', 'GET', '/')).toBe(2);
    expect(burstOf('2001:db8:1:3::1', 'GET', '/')).toBe(4);
  });

  it('lets a shadow block through and names the rule it would have applied', () => {
    const { decide } = setup(`${POLICY}  - path: /wp-cron.php\n    mode: shadow\n`);
    expect(decide('198.51.100.1', 'GET', '/wp-cron.php')).toEqual({ action: 'allow', shadow: { kind: 'block', rule: '/wp-cron.php' } });
    expect(decide('198.51.100.1', 'GET', '/xmlrpc.php')).toMatchObject({ action: 'block' });
  });

  it('lets a shadow limit through once its bucket is empty, while enforced rules still refuse', () => {
    const policy = POLICY.replace('    per_ip: { rate: 1/min, burst: 1 }\n    status: 403', '    per_ip: { rate: 1/min, burst: 1 }\n    status: 403\n    mode: shadow');
    const { decide } = setup(policy);
    expect(decide('198.51.100.1', 'POST', '/wp-login.php')).toEqual({ action: 'allow', shadow: null });
    expect(decide('198.51.100.1', 'POST', '/wp-login.php')).toEqual({ action: 'allow', shadow: { kind: 'limit', rule: 'login' } });
    // `write` (burst 2) is enforced: the third POST is refused by it, shadow or not.
    expect(decide('198.51.100.1', 'POST', '/wp-login.php')).toMatchObject({ action: 'limit', rule: 'write' });
  });

  it('explains a client: bucket levels of its address and prefix, charging nothing', () => {
    const { decide, engine, clock } = setup();
    for (let i = 0; i < 3; i++) decide('198.51.100.1', 'GET', '/');
    const explanation = engine.explain(client('198.51.100.1'), clock.nowMs());
    const level = (rule: string, scope: string) => explanation.buckets.find((bucket) => bucket.rule === rule && bucket.scope === scope);
    expect(level('read', 'ip')).toMatchObject({ key: '198.51.100.1', tokens: 1, burst: 4, rate: '2/s', tracked: true });
    expect(level('read', 'prefix')).toMatchObject({ key: '198.51.100.0/24', tokens: 3, burst: 6 });
    expect(level('write', 'ip')).toMatchObject({ tokens: 2, burst: 2 });
    expect(explanation.strikes).toBeNull();
    expect(engine.explain(client('198.51.100.1'), clock.nowMs()).buckets).toEqual(explanation.buckets);
    expect(engine.explain(client('192.0.2.250'), clock.nowMs()).allowlisted).toBe(true);
  });

  it('applies rules beyond the 31 a plan bitmask holds', () => {
    const many = Array.from({ length: 32 }, (_, i) => `  - name: r${i}\n    methods: [GET]\n    paths: ["/p${i}"]\n    per_ip: { rate: 1/min, burst: 100 }\n`).join('');
    const { burstOf } = setup(`limits:\n${many}  - name: last\n    methods: [GET]\n    paths: ["/tight"]\n    per_ip: { rate: 1/min, burst: 2 }\n`);
    expect(burstOf('198.51.100.1', 'GET', '/tight')).toBe(2);
    expect(burstOf('198.51.100.1', 'GET', '/p31', 150)).toBe(100);
    expect(burstOf('198.51.100.1', 'GET', '/elsewhere', 50)).toBe(50);
  });

  it('plans per combination of matching rules: a request matching fewer rules pays fewer buckets', () => {
    const { burstOf } = setup();
    // POST /wp-login.php pays write (burst 2) and login (burst 1); POST / only write.
    expect(burstOf('198.51.100.1', 'POST', '/wp-login.php')).toBe(1);
    expect(burstOf('198.51.100.2', 'POST', '/')).toBe(2);
    expect(burstOf('198.51.100.3', 'POST', '/WP-LOGIN.PHP/x')).toBe(1);
  });
});

