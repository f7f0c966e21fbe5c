import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, request, type TestResponse } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/** An origin that says which one it is and holds `/hold` requests until released. */
async function origin(name: string) {
  const held: http.ServerResponse[] = [];
  let seen = 0;
  const server = http.createServer((req, res) => {
    seen++;
    req.resume();
    if (req.url === '/hold') held.push(res);
    else res.end(`${name} ${req.url} ${req.headers.host}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get seen() {
      return seen;
    },
    /** Resolves once `count` requests are being held. */
    async holding(count: number) {
      while (held.length < count) await new Promise((resolve) => setTimeout(resolve, 5));
    },
    release() {
      for (const res of held.splice(0)) res.end(`${name} released`);
    },
    close: () => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

type Origin = Awaited<ReturnType<typeof origin>>;

const POLICY = (phabUrl: string, phabCap = 1): string => `concurrency: { upstream_max: 2, per_client_max: 2, queue_max: 8, per_client_queue_max: 8, queue_timeout: 300ms }
block:
  - path: /xmlrpc.php
sites:
  - name: phab
    hosts: [phab.test]
    upstream: "${phabUrl}"
    concurrency: { upstream_max: ${phabCap}, per_client_max: ${phabCap} }
  - name: shop
    hosts: [shop.test]
    concurrency: { upstream_max: 1, per_client_max: 1 }
  - name: blog
    hosts: [blog.test, "*.blog.test"]
`;

describe('sites in the proxy: routing, caps, metrics, readiness', () => {
  let main: Origin;
  let phab: Origin;
  let proxy: TestProxy;
  const get = (host: string, path = '/a', localAddress = '127.12.0.1'): Promise<TestResponse> => request(proxy.url, { path, headers: { host }, localAddress });

  beforeAll(async () => {
    main = await origin('main');
    phab = await origin('phab');
    proxy = await startTestProxy(
      main.url,
      POLICY(phab.url),
    );
  });

  afterAll(async () => {
    main?.release();
    phab?.release();
    await proxy?.close();
    await main?.close();
    await phab?.close();
  });

  it('forwards each site to its upstream, and names no site to the default one', async () => {
    expect((await get('phab.test')).body).toBe('phab /a phab.test');
    expect((await get('Phab.Test.:8080')).body).toBe('phab /a Phab.Test.:8080');
    expect((await get('www.blog.test')).body).toBe('main /a www.blog.test');
    expect((await get('elsewhere.test')).body).toBe('main /a elsewhere.test');
  });

  it('chooses the site by an absolute-form authority over Host, as Apache does', async () => {
    const answer = await rawRequest(proxy.port, 'GET http://phab.test/abs HTTP/1.1\r\nHost: blog.test\r\nConnection: close\r\n\r\n');
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('phab /abs phab.test');
  });

  it('answers 400 to a Host Apache would refuse, without forwarding it', async () => {
    const before = main.seen + phab.seen;
    for (const host of ['blog test', 'blog.test..', 'blog.test:']) {
      const answer = await rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, 5_000, '127.12.9.1');
      expect(answer.status, host).toBe(400);
    }
    expect(main.seen + phab.seen).toBe(before);
  });

  it('isolates a site with its own upstream and cap: a flood that fills the default cap does not starve it, nor the other way round', async () => {
    const held = [get('blog.test', '/hold', '127.12.1.1'), get('blog.test', '/hold', '127.12.1.2')];
    await main.holding(2);
    expect((await get('phab.test', '/a', '127.12.1.3')).body).toBe('phab /a phab.test');
    expect((await get('blog.test', '/a', '127.12.1.4')).status).toBe(503);
    main.release();
    await Promise.all(held);

    const phabHeld = get('phab.test', '/hold', '127.12.2.1');
    await phab.holding(1);
    expect((await get('phab.test', '/a', '127.12.2.2')).status).toBe(503);
    expect((await get('blog.test', '/a', '127.12.2.3')).body).toBe('main /a blog.test');
    phab.release();
    await phabHeld;
  });

  it('caps a site without its own upstream inside the default cap (a sub-cap)', async () => {
    const held = get('shop.test', '/hold', '127.12.3.1');
    await main.holding(1);
    expect((await get('shop.test', '/a', '127.12.3.2')).status).toBe(503);
    expect((await get('blog.test', '/a', '127.12.3.3')).body).toBe('main /a blog.test');
    main.release();
    await held;
    expect((await get('shop.test', '/a', '127.12.3.4')).body).toBe('main /a shop.test');
  });

  it('counts requests per site in portcullis_site_requests_total, a closed set from the policy', async () => {
    expect((await get('shop.test', '/xmlrpc.php', '127.12.4.1')).status).toBe(403);
    const metrics = (await request(proxy.adminUrl, { path: '/metrics' })).body;
    const sample = (labels: string) => Number(new RegExp(`^portcullis_site_requests_total\\{${labels.replace(/[{}]/g, '\\$&')}\\} (\\d+)$`, 'm').exec(metrics)?.[1]);
    expect(sample('site="phab",decision="allowed",rule=""')).toBeGreaterThanOrEqual(3);
    expect(sample('site="shop",decision="blocked",rule="/xmlrpc.php"')).toBe(1);
    expect(sample('site="shop",decision="queued_timeout",rule="concurrency"')).toBe(1);
    expect(sample('site="_default_",decision="allowed",rule=""')).toBeGreaterThanOrEqual(1);
    expect(sample('site="",decision="rejected",rule="malformed"')).toBe(3);
    const sites = new Set([...metrics.matchAll(/^portcullis_site_requests_total\{site="([^"]*)"/gm)].map((match) => match[1]));
    expect(sites).toEqual(new Set(['phab', 'shop', 'blog', '_default_', '']));
  });

  it('a reload that raises a site upstream\'s cap grows its connection pool too, and keeps the old connections\' requests', async () => {
    const before = get('phab.test', '/hold', '127.12.5.1');
    await phab.holding(1);
    await proxy.writePolicy(POLICY(phab.url, 3));
    expect(await proxy.running.reload('test')).toEqual({ ok: true, restartNeeded: [] });
    const after = [get('phab.test', '/hold', '127.12.5.2'), get('phab.test', '/hold', '127.12.5.3')];
    // Three at the origin at once: the one from before the reload on the old pool, two on the new one.
    const all = await Promise.race([phab.holding(3).then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 3_000))]);
    phab.release();
    expect(all).toBe(true);
    expect((await Promise.all([before, ...after])).map((response) => response.body)).toEqual(['phab released', 'phab released', 'phab released']);
    await proxy.writePolicy(POLICY(phab.url));
    expect((await proxy.running.reload('test')).ok).toBe(true);
  });

  it('checks every upstream in /readyz and reports each', async () => {
    const ready = await request(proxy.adminUrl, { path: '/readyz' });
    expect(ready.status).toBe(200);
    const checks = JSON.parse(ready.body).checks as Record<string, { ok: boolean; detail: string }>;
    expect(checks.upstream?.ok).toBe(true);
    expect(checks['upstream of site phab']).toEqual({ ok: true, detail: `${phab.url} accepts connections` });
    await phab.close();
    const notReady = await request(proxy.adminUrl, { path: '/readyz' });
    expect(notReady.status).toBe(503);
    const after = JSON.parse(notReady.body).checks as Record<string, { ok: boolean; detail: string }>;
    expect(after.upstream?.ok).toBe(true);
    expect(after['upstream of site phab']?.ok).toBe(false);
  });
});
