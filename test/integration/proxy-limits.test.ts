import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { clientAgent, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

// Slow refill rates so that nothing refills while a test runs, however busy the machine.
const POLICY = `
limits:
  - name: read
    methods: [GET, HEAD]
    per_ip: { rate: 1/min, burst: 5 }
    per_prefix: { rate: 1/min, burst: 8 }
  - name: write
    methods: [POST]
    per_ip: { rate: 1/min, burst: 3 }
`;

describe('rate limits in front of a real Apache', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    // mod_remoteip makes Apache log the client portcullis names in X-Forwarded-For, as in production.
    apache = await startApacheWithScripts({ modules: ['remoteip'], extraConfig: 'RemoteIPHeader X-Forwarded-For\nRemoteIPInternalProxy 127.0.0.1' });
    proxy = await startTestProxy(apache.url, POLICY);
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  /** Sends `count` requests from one source address over keep-alive; returns their statuses. */
  async function burst(localAddress: string, count: number, method = 'GET'): Promise<number[]> {
    const agent = clientAgent(localAddress);
    try {
      const statuses: number[] = [];
      const path = method === 'GET' ? '/index.html' : '/echo.cgi';
      for (let i = 0; i < count; i++) statuses.push((await request(proxy.url, { method, path, agent, body: method === 'GET' ? undefined : 'x=1' })).status);
      return statuses;
    } finally {
      agent.destroy();
    }
  }

  it('serves a burst, then answers 429 with Retry-After and RateLimit headers', async () => {
    expect(await burst('127.20.1.1', 5)).toEqual([200, 200, 200, 200, 200]);
    const refused = await request(proxy.url, { path: '/index.html', localAddress: '127.20.1.1' });
    expect(refused.status).toBe(429);
    // One token per minute: the next one is a minute away, give or take the test's own duration.
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(50);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    expect(refused.headers['ratelimit-policy']).toBe('"read-ip";q=5;w=300');
    expect(refused.headers['ratelimit']).toBe(`"read-ip";r=0;t=${refused.headers['retry-after']}`);
    expect(refused.headers['cache-control']).toBe('no-store');
  });

  it('keeps GET and POST buckets independent', async () => {
    expect(await burst('127.21.1.1', 4, 'POST')).toEqual([200, 200, 200, 429]);
    expect(await burst('127.21.1.1', 1, 'GET')).toEqual([200]);
  });

  it('lets a second address of the same /24 share the prefix bucket, not a neighbouring /24', async () => {
    expect(await burst('127.22.1.1', 5)).toEqual([200, 200, 200, 200, 200]);
    // The /24 allows 8, so 3 are left for the neighbour although its own bucket holds 5.
    expect(await burst('127.22.1.2', 5)).toEqual([200, 200, 200, 429, 429]);
    expect(await burst('127.22.2.1', 5)).toEqual([200, 200, 200, 200, 200]);
  });

  it('lets Apache log the real client and never a spoofed X-Forwarded-For', async () => {
    const marker = `/index.html?who=${Date.now()}`;
    const response = await request(proxy.url, { path: marker, localAddress: '127.23.1.1', headers: { 'X-Forwarded-For': '203.0.113.66' } });
    expect(response.status).toBe(200);
    // Over keep-alive Apache may log a moment after the answer arrives: wait for the line.
    const log = await apache.waitForAccessLog((entries) => entries.some((line) => line.requestLine.includes(marker)));
    const entry = log.find((line) => line.requestLine.includes(marker));
    expect(entry?.remoteAddr).toBe('127.23.1.1');
    // The spoofing peer is reported once, so a forgotten trusted_proxies is noticed.
    expect(proxy.logs.some((line) => line['peer'] === '127.23.1.1' && String(line['msg']).includes('trusted_proxies'))).toBe(true);
  });

  it('never charges a refused request to Apache', async () => {
    const before = (await apache.accessLog()).filter((line) => line.remoteAddr === '127.24.1.1').length;
    const statuses = await burst('127.24.1.1', 20);
    expect(statuses.filter((status) => status === 200)).toHaveLength(5);
    const fromClient = (entries: { remoteAddr: string }[]) => entries.filter((line) => line.remoteAddr === '127.24.1.1').length;
    const log = await apache.waitForAccessLog((entries) => fromClient(entries) >= before + 5);
    expect(fromClient(log) - before).toBe(5);
  });
});
