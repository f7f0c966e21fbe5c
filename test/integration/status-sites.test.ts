import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StatusReport } from '../../src/admin/status-report.js';
import { renderStatus } from '../../src/cli/status-command.js';
import type { ApacheHandle } from '../support/apache.js';
import { startApache } from '../support/apache.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/** `portcullis status` shows rates per site when the policy has sites (issue 12). */
describe('status by site', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApache();
    proxy = await startTestProxy(apache.url, 'sites:\n  - name: shop\n    hosts: [shop.test]\n    block:\n      - path: /index.html\n');
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  it('counts each site\'s decisions apart, the top-level policy as the default site', async () => {
    for (let i = 0; i < 5; i++) {
      await request(proxy.url, { path: '/index.html', headers: { host: 'shop.test' }, localAddress: '127.96.1.1' });
      await request(proxy.url, { path: '/index.html', headers: { host: 'blog.test' }, localAddress: '127.96.2.1' });
    }
    // Rates count complete seconds: wait for the current one to end.
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const report = (await (await fetch(`${proxy.adminUrl}/status`)).json()) as StatusReport;
    const sites = report.rates_by_site ?? {};
    expect(sites.shop?.blocked).toBeGreaterThan(0);
    expect(sites.shop?.allowed).toBe(0);
    const others = Object.entries(sites).filter(([site]) => site !== 'shop');
    expect(others).toHaveLength(1);
    expect(others[0]?.[1].allowed).toBeGreaterThan(0);
    expect(others[0]?.[1].blocked).toBe(0);
    expect(renderStatus(report, proxy.adminUrl, Date.now())).toMatch(/requests per second by site[\s\S]*\nshop /);
  });

  it('has no per-site rates when the policy has no sites', async () => {
    const plain = await startTestProxy(apache.url, '');
    try {
      const report = (await (await fetch(`${plain.adminUrl}/status`)).json()) as StatusReport;
      expect(report.rates_by_site).toBeUndefined();
    } finally {
      await plain.close();
    }
  });
});
