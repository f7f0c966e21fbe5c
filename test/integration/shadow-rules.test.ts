import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { clientAgent, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

const POLICY = `
limits:
  - name: read
    methods: [GET]
    per_ip: { rate: 1/s, burst: 100 }
  - name: read-tight
    methods: [GET]
    per_ip: { rate: 1/min, burst: 2 }
    mode: shadow
block:
  - path: /index.html
    mode: shadow
`;

describe('rules in shadow mode', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    proxy = await startTestProxy(apache.url, POLICY);
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  it('let every request through to Apache, and count and log (once per client) what they would have refused', async () => {
    const agent = clientAgent('127.0.60.1');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await request(proxy.url, { path: '/index.html', agent })).status);
    for (let i = 0; i < 3; i++) statuses.push((await request(proxy.url, { path: '/echo.cgi', agent })).status);
    agent.destroy();
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    const reached = await apache.waitForAccessLog((entries) => entries.filter((entry) => entry.urlPath === '/index.html').length >= 3);
    expect(reached.filter((entry) => entry.urlPath === '/index.html')).toHaveLength(3);

    const metrics = (await request(proxy.adminUrl, { path: '/metrics' })).body;
    expect(metrics).toContain('portcullis_shadow_refusals_total{kind="block",rule="/index.html"} 3');
    // read-tight (burst 2) would have refused the fourth and later GETs; /index.html ones were already shadow-blocked.
    expect(metrics).toContain('portcullis_shadow_refusals_total{kind="limit",rule="read-tight"} 3');
    expect(metrics).toContain('portcullis_requests_total{decision="allowed",rule=""} 6');
    const logged = proxy.logs.filter((line) => line.client === '127.0.60.1' && line.shadow !== undefined);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ shadow: 'block', rule: '/index.html' });
  });
});
