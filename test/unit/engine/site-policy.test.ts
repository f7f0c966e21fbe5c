import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import { assembleEngine, type AssembledEngine } from '../../../src/engine/engine-assembly.js';
import { makeClientKey, parseClientAddress } from '../../../src/identity/client-key.js';

/*
 * Per-site policy through the engine as serve assembles it, on manual time:
 * every request has its own timestamp, nothing sleeps.
 */

const POLICY = `
limits:
  - name: read
    methods: [GET]
    per_ip: { rate: 1/min, burst: 3 }
  - name: write
    methods: [POST]
    per_ip: { rate: 1/min, burst: 2 }
block:
  - path: /xmlrpc.php
    strikes: 5
escalation: { strikes: 12, window: 60s, ban: 10m, prefix_after: 0 }
sites:
  - name: jetpack
    hosts: [jetpack.example, "*.jetpack.example"]
    disable: [/xmlrpc.php]
    limits:
      - name: xmlrpc
        methods: [POST]
        paths: [/xmlrpc.php]
        per_ip: { rate: 3/min, burst: 3 }
  - name: shop
    hosts: [shop.example]
    clients: { allow: [198.51.100.0/24] }
    escalation: { status: 429 }
    limits:
      - name: write
        methods: [POST]
        per_ip: { rate: 1/min, burst: 5 }
      - name: checkout
        methods: [POST]
        paths: [/checkout]
        per_ip: { rate: 1/min, burst: 1 }
  - name: blog
    hosts: [blog.example]
    limits:
      - name: checkout
        methods: [POST]
        paths: [/checkout]
        per_ip: { rate: 1/min, burst: 1 }
`;

const client = (ip: string) => makeClientKey(parseClientAddress(ip)!, { ipv4: 24, ipv6: 64 });

/** Decides one request for `host` at `atMs` and returns its action (and what refused it). */
function decide(assembled: AssembledEngine, host: string | undefined, ip: string, method: string, target: string, atMs: number): string {
  const site = assembled.policy.selectSite(host);
  const decision = assembled.engine.decide({ client: client(ip), method, target, site }, atMs);
  if (decision.action === 'limit' || decision.action === 'block') return `${decision.action} ${decision.rule}`;
  if (decision.action === 'ban') return `ban ${decision.status}`;
  if (decision.action === 'reject') return `reject ${decision.status}`;
  return decision.action;
}

/** `count` identical requests one millisecond apart from `fromMs`. */
function repeat(assembled: AssembledEngine, count: number, host: string, ip: string, method: string, target: string, fromMs = 0): string[] {
  return Array.from({ length: count }, (_, i) => decide(assembled, host, ip, method, target, fromMs + i));
}

describe('per-site policy in the engine', () => {
  const config = parsePolicy(POLICY, 'sites.yaml');

  it('blocks xmlrpc.php where the global block applies and limits it on the site that disables the block for its own rule', () => {
    const assembled = assembleEngine(config);
    expect(repeat(assembled, 2, 'blog.example', '203.0.113.1', 'POST', '/xmlrpc.php')).toEqual(['block /xmlrpc.php', 'block /xmlrpc.php']);
    // The site's xmlrpc rule (burst 3) and the global write rule (burst 2) both apply: write runs out first.
    expect(repeat(assembled, 4, 'www.jetpack.example', '203.0.113.2', 'POST', '/xmlrpc.php')).toEqual(['allow', 'allow', 'limit write', 'limit write']);
  });

  it('lets a site rule of the same name replace the global one, on that site only', () => {
    const assembled = assembleEngine(config);
    expect(repeat(assembled, 6, 'shop.example', '203.0.113.3', 'POST', '/cart')).toEqual(['allow', 'allow', 'allow', 'allow', 'allow', 'limit write']);
    expect(repeat(assembled, 3, 'blog.example', '203.0.113.4', 'POST', '/comment')).toEqual(['allow', 'allow', 'limit write']);
  });

  it('keeps one bucket per client for a global rule across sites, so visiting many sites multiplies nothing', () => {
    const assembled = assembleEngine(config);
    const ip = '203.0.113.5';
    expect([
      decide(assembled, 'blog.example', ip, 'GET', '/', 0),
      decide(assembled, 'shop.example', ip, 'GET', '/', 1),
      decide(assembled, 'jetpack.example', ip, 'GET', '/', 2),
      decide(assembled, 'unknown.example', ip, 'GET', '/', 3),
    ]).toEqual(['allow', 'allow', 'allow', 'limit read']);
  });

  it('keys a site rule\'s buckets by site and rule: the same rule name on two sites is two buckets', () => {
    const assembled = assembleEngine(config);
    const ip = '203.0.113.6';
    expect([
      decide(assembled, 'shop.example', ip, 'POST', '/checkout', 0),
      decide(assembled, 'shop.example', ip, 'POST', '/checkout', 1),
      decide(assembled, 'blog.example', ip, 'POST', '/checkout', 2),
      decide(assembled, 'blog.example', ip, 'POST', '/checkout', 3),
    ]).toEqual(['allow', 'limit checkout', 'allow', 'limit checkout']);
    const levels = assembled.store.peek('shop\u0000', 'ip', client(ip), 3);
    expect(levels?.get('checkout/ip/1/min/1')).toBeCloseTo(0, 3);
  });

  it('costs a client only the buckets it touches: memory per client does not grow with the number of sites', () => {
    const many = (sites: number) =>
      parsePolicy(
        `${POLICY.split('sites:')[0]}sites:\n${Array.from({ length: sites }, (_, i) => `  - name: s${i}\n    hosts: [s${i}.example]\n    limits: [{ name: own, methods: [GET], per_ip: { rate: 1/s, burst: 9 }, per_prefix: { rate: 9/s, burst: 99 } }]\n`).join('')}`,
        'many.yaml',
      );
    const tracked = (sites: number) => {
      const assembled = assembleEngine(many(sites));
      for (let i = 0; i < 10; i++) decide(assembled, 's0.example', `203.0.113.${i}`, 'GET', '/', i);
      return assembled.store.size;
    };
    // Per client: its address for the global rules, its address and /24 for the site's own rule; the /24 once for all ten.
    expect(tracked(1)).toBe(10 + 10 + 1);
    expect(tracked(200)).toBe(tracked(1));
  });

  it('exempts a site\'s clients.allow from that site\'s limits only, never from blocks', () => {
    const assembled = assembleEngine(config);
    const ip = '198.51.100.9';
    expect(repeat(assembled, 8, 'shop.example', ip, 'POST', '/checkout').every((action) => action === 'allow')).toBe(true);
    expect(decide(assembled, 'shop.example', ip, 'POST', '/xmlrpc.php', 10)).toBe('block /xmlrpc.php');
    expect(repeat(assembled, 3, 'blog.example', ip, 'POST', '/comment', 20)).toEqual(['allow', 'allow', 'limit write']);
  });

  it('keeps strikes and bans global: strikes on two sites add up, the ban holds on every site with the site\'s status, and its reason names the site and rule', () => {
    const assembled = assembleEngine(config);
    const ip = '203.0.113.7';
    // Two blocks on blog (5 strikes each), then two refusals by shop's checkout rule: 12 strikes.
    expect(repeat(assembled, 2, 'blog.example', ip, 'GET', '/xmlrpc.php')).toEqual(['block /xmlrpc.php', 'block /xmlrpc.php']);
    expect(repeat(assembled, 3, 'shop.example', ip, 'POST', '/checkout', 10)).toEqual(['allow', 'limit checkout', 'limit checkout']);
    const [ban] = assembled.ledger.active();
    expect(ban?.target).toBe(ip);
    expect(ban?.reason).toBe('12 strikes within 60s (last refused by checkout on site shop)');
    expect(decide(assembled, 'blog.example', ip, 'GET', '/', 20)).toBe('ban 403');
    expect(decide(assembled, 'shop.example', ip, 'GET', '/', 21)).toBe('ban 429');
  });

  it('refuses a request without a usable Host with 400 before any rule, as a strike', () => {
    const assembled = assembleEngine(config);
    expect(decide(assembled, 'blog.example..', '203.0.113.8', 'POST', '/xmlrpc.php', 0)).toBe('reject 400');
    expect(decide(assembled, 'blog.example:', '203.0.113.8', 'GET', '/', 1)).toBe('reject 400');
    expect(assembled.escalator.strikesOf(client('203.0.113.8'), 1)).toBe(2);
    // No Host at all (HTTP/1.0) is served from the default site, as Apache does.
    expect(decide(assembled, undefined, '203.0.113.8', 'POST', '/xmlrpc.php', 2)).toBe('block /xmlrpc.php');
  });

  it('serves unknown hosts from the site that says default: true, else from the top-level policy', () => {
    const withDefault = assembleEngine(parsePolicy(POLICY.replace('    hosts: [blog.example]\n', '    hosts: [blog.example]\n    default: true\n'), 'd.yaml'));
    expect(repeat(withDefault, 2, 'elsewhere.example', '203.0.113.9', 'POST', '/checkout')).toEqual(['allow', 'limit checkout']);
    expect(withDefault.policy.selectSite('elsewhere.example')?.name).toBe('blog');
    const without = assembleEngine(config);
    expect(without.policy.selectSite('elsewhere.example')?.name).toBe('_default_');
    expect(repeat(without, 2, 'elsewhere.example', '203.0.113.9', 'POST', '/checkout')).toEqual(['allow', 'allow']);
  });

  it('keeps every unchanged rule\'s bucket levels across a reload, per site; a changed rule starts full', () => {
    const assembled = assembleEngine(config);
    const ip = '203.0.113.10';
    expect(decide(assembled, 'shop.example', ip, 'POST', '/checkout', 0)).toBe('allow');
    expect(repeat(assembled, 2, 'blog.example', ip, 'POST', '/comment', 1)).toEqual(['allow', 'allow']);
    const shopCheckout = 'name: checkout\n        methods: [POST]\n        paths: [/checkout]\n        per_ip: { rate: 1/min, burst: 1 }\n  - name: blog';
    assembled.reconfigure(parsePolicy(POLICY.replace(shopCheckout, shopCheckout.replace('burst: 1 }', 'burst: 2 }')), 'reloaded.yaml'));
    // shop's checkout changed (burst 2), so it starts full; the global write did not, so blog finds it still empty.
    expect(decide(assembled, 'shop.example', ip, 'POST', '/checkout', 3)).toBe('allow');
    expect(decide(assembled, 'blog.example', ip, 'POST', '/comment', 4)).toBe('limit write');
    expect(assembled.store.peek('', 'ip', client(ip), 4)?.get('write/ip/1/min/2')).toBeCloseTo(0, 3);
    // shop's own write (burst 5) was unchanged: two taken, before and after the reload.
    expect(assembled.store.peek('shop\u0000', 'ip', client(ip), 4)?.get('write/ip/1/min/5')).toBeCloseTo(3, 3);
  });
});

describe('explain, per site', () => {
  it('lists the global buckets, and a site\'s own buckets where the client has been', () => {
    const assembled = assembleEngine(parsePolicy(POLICY, 'sites.yaml'));
    const ip = '203.0.113.11';
    decide(assembled, 'shop.example', ip, 'POST', '/checkout', 0);
    const rows = assembled.engine.explain(client(ip), 0).buckets.map((bucket) => `${bucket.site ?? '*'} ${bucket.rule} ${bucket.scope} ${bucket.key} ${bucket.tokens}`);
    expect(rows).toEqual(['* read ip 203.0.113.11 3', '* write ip 203.0.113.11 2', 'shop write ip 203.0.113.11 4', 'shop checkout ip 203.0.113.11 0']);
  });
});
