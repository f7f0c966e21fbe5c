import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import type { LoggedRequest } from '../../../src/replay/access-log-line.js';
import { ReplaySession } from '../../../src/replay/replay-session.js';
import { TimeOrderedFeed } from '../../../src/replay/time-ordered-feed.js';

const START_MS = Date.UTC(2026, 10, 24, 10);

/** Replays requests through a session as the command does: reordered, spread within each second. */
function replay(policyYaml: string, requests: LoggedRequest[]) {
  const session = new ReplaySession(parsePolicy(policyYaml, 'policy.yaml'));
  const feed = new TimeOrderedFeed(5);
  const due = (request: LoggedRequest, atMs: number) => session.decide(request, atMs);
  for (const request of requests) feed.push(request, due);
  feed.drain(due);
  return session.result();
}

function req(fields: Partial<LoggedRequest> & { client: string; atS: number }): LoggedRequest {
  const { atS, ...rest } = fields;
  return { vhost: null, method: 'GET', target: '/', status: 200, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0', epochMs: START_MS + atS * 1000, ...rest };
}

const SITES = `block:
  - name: xmlrpc
    path: /xmlrpc.php
escalation: { strikes: 3, window: 60s, ban: 10m }
sites:
  - name: jetpack
    hosts: [jetpack.test]
    limits:
      - name: xmlrpc
        methods: [POST]
        paths: [/xmlrpc.php]
        per_ip: { rate: 2/min, burst: 2 }
  - name: blog
    hosts: [blog.test]
`;

describe('ReplaySession', () => {
  it('decides each line by the site of its logged host: xmlrpc blocked on one, limited on the other', () => {
    const requests = [
      ...Array.from({ length: 4 }, (_, i) => req({ client: '192.0.2.1', atS: i * 10, vhost: 'jetpack.test', method: 'POST', target: '/xmlrpc.php' })),
      ...Array.from({ length: 4 }, (_, i) => req({ client: '192.0.2.2', atS: i * 10, vhost: 'blog.test', method: 'POST', target: '/xmlrpc.php' })),
    ].sort((a, b) => a.epochMs - b.epochMs);
    const result = replay(SITES, requests);
    expect(result.bySite).toEqual({ jetpack: 4, blog: 4 });
    expect(result.decisions).toMatchObject({ allow: 3, limit: 1, block: 3, ban: 1 });
    const byClient = new Map(result.offenders.map((offender) => [offender.target, offender]));
    expect(byClient.get('192.0.2.1')).toMatchObject({ refused: 1, firstRule: 'xmlrpc', firstSite: 'jetpack', bannedAtMs: null });
    expect(byClient.get('192.0.2.2')).toMatchObject({ refused: 4, firstRule: 'xmlrpc', firstSite: 'blog', bannedAtMs: START_MS + 20_500 });
    expect(result.withoutHost).toBe(0);
  });

  it('counts lines without a host while the policy has sites: the default site decided them', () => {
    expect(replay(SITES, [req({ client: '192.0.2.1', atS: 0 })])).toMatchObject({ withoutHost: 1, bySite: { _default_: 1 } });
  });

  it('charges a trusted proxy\'s requests to the client its X-Forwarded-For names, and nobody else\'s', () => {
    const policy = `clients: { trusted_proxies: [10.0.0.0/8] }\nblock:\n  - path: /xmlrpc.php\nescalation: { strikes: 3, window: 60s, ban: 10m }\n`;
    const viaCdn = (client: string, forwardedFor: string, atS: number) => req({ client, forwardedFor, atS, method: 'POST', target: '/xmlrpc.php' });
    const result = replay(policy, [
      ...Array.from({ length: 3 }, (_, i) => viaCdn('10.1.1.1', '203.0.113.7', i)),
      // An untrusted peer's header names nobody: the peer itself is charged.
      ...Array.from({ length: 3 }, (_, i) => viaCdn('192.0.2.9', '203.0.113.8', i)),
    ]);
    const banned = result.offenders.filter((offender) => offender.bannedAtMs !== null).map((offender) => offender.target).sort();
    expect(banned).toEqual(['192.0.2.9', '203.0.113.7']);
  });

  it('lists as collateral a refused, never banned client whose requests look like a visitor\'s, and not the flooder', () => {
    const policy = `limits:\n  - name: pages\n    methods: [GET]\n    per_ip: { rate: 1/min, burst: 10 }\nescalation: { strikes: 1000, window: 60s, ban: 10m }\n`;
    const visitor = Array.from({ length: 30 }, (_, i) => req({ client: '198.51.100.1', atS: i * 10, target: `/post/${i}` }));
    const tool = Array.from({ length: 30 }, (_, i) => req({ client: '198.51.100.2', atS: i * 10, target: `/post/${i}`, userAgent: 'python-requests/2.31' }));
    const burst = Array.from({ length: 30 }, (_, i) => req({ client: '198.51.100.3', atS: Math.floor(i / 10), target: `/post/${i}` }));
    const quiet = Array.from({ length: 5 }, (_, i) => req({ client: '198.51.100.4', atS: i * 60 }));
    const result = replay(policy, [...visitor, ...tool, ...burst, ...quiet].sort((a, b) => a.epochMs - b.epochMs));
    expect(result.offenders.map((offender) => offender.target).sort()).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3']);
    expect(result.collateral).toEqual([
      { client: '198.51.100.1', requests: 30, refused: 16, firstRefusedMs: START_MS + 110_000, rule: 'pages', site: null, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0' },
    ]);
  });
});
