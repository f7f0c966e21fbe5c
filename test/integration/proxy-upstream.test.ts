import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { rawRequest, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

describe('upstream admission and failures, with a real Apache', () => {
  let apache: ApacheHandle;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
  });

  afterAll(async () => {
    await apache?.stop();
  });

  /** Starts a proxy for one test and always closes it. */
  async function withProxy(policy: string, body: (proxy: TestProxy) => Promise<void>, upstream = apache.url): Promise<void> {
    const proxy = await startTestProxy(upstream, policy);
    try {
      await body(proxy);
    } finally {
      await proxy.close();
    }
  }

  it('drops the upstream request and frees its slot as soon as the client hangs up', async () => {
    await withProxy('', async (proxy) => {
      const socket = net.connect({ host: '127.0.0.1', port: proxy.port, localAddress: '127.31.1.1' });
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write('GET /slow.cgi?3 HTTP/1.1\r\nHost: test\r\n\r\n');
      await waitFor(async () => (await countInFlight(proxy)) === 1);
      const hungUp = performance.now();
      socket.destroy();
      await waitFor(async () => (await countInFlight(proxy)) === 0);
      // Apache would take 3 s to answer: the slot came back long before.
      expect(performance.now() - hungUp).toBeLessThan(1_000);
    });
  });

  it('holds requests over the upstream cap in a queue, then answers 503 when they wait too long', async () => {
    const policy = 'concurrency: { upstream_max: 2, per_client_max: 2, queue_max: 8, per_client_queue_max: 8, queue_timeout: 300ms }';
    await withProxy(policy, async (proxy) => {
      const slow = [1, 2].map((n) => request(proxy.url, { path: `/slow.cgi?2&n=${n}`, localAddress: `127.30.${n}.1` }));
      // Let the two slow requests take both slots before the third arrives.
      await waitFor(async () => (await countInFlight(proxy)) === 2);
      const started = performance.now();
      const waited = await request(proxy.url, { path: '/index.html', localAddress: '127.30.3.1' });
      expect(waited.status).toBe(503);
      expect(waited.headers['retry-after']).toBe('1');
      expect(performance.now() - started).toBeGreaterThanOrEqual(250);
      expect((await Promise.all(slow)).map((response) => response.status)).toEqual([200, 200]);
      // The refused request never reached Apache.
      expect((await apache.accessLog()).filter((line) => line.urlPath === '/index.html' && line.requestLine.includes('127.30'))).toEqual([]);
    });
  });

  it('gives a queued request the next free slot', async () => {
    const policy = 'concurrency: { upstream_max: 1, per_client_max: 1, queue_max: 8, per_client_queue_max: 8, queue_timeout: 20s }';
    await withProxy(policy, async (proxy) => {
      const order: string[] = [];
      const slow = request(proxy.url, { path: '/slow.cgi?1', localAddress: '127.31.1.1' }).then((response) => order.push(`slow ${response.status}`));
      await waitFor(async () => (await countInFlight(proxy)) === 1);
      const fast = request(proxy.url, { path: '/index.html', localAddress: '127.31.2.1' }).then((response) => order.push(`fast ${response.status}`));
      await Promise.all([slow, fast]);
      expect(order).toEqual(['slow 200', 'fast 200']);
    });
  });

  it('refuses at once when a client\'s own share of the queue is full', async () => {
    const policy = 'concurrency: { upstream_max: 4, per_client_max: 1, queue_max: 8, per_client_queue_max: 1, queue_timeout: 20s }';
    await withProxy(policy, async (proxy) => {
      const held = request(proxy.url, { path: '/slow.cgi?1.5', localAddress: '127.32.1.1' });
      await waitFor(async () => (await countInFlight(proxy)) === 1);
      const queued = request(proxy.url, { path: '/index.html?q', localAddress: '127.32.1.1' });
      const started = performance.now();
      const refused = await request(proxy.url, { path: '/index.html?r', localAddress: '127.32.1.1' });
      expect(refused.status).toBe(503);
      expect(performance.now() - started).toBeLessThan(1_000);
      // Another client is not held back by the first one's queue.
      expect((await request(proxy.url, { path: '/index.html', localAddress: '127.32.2.1' })).status).toBe(200);
      expect((await held).status).toBe(200);
      expect((await queued).status).toBe(200);
    });
  });

  it('answers 504 when Apache does not answer in time, and keeps serving', async () => {
    await withProxy('timeouts: { upstream_headers: 500ms }', async (proxy) => {
      expect((await request(proxy.url, { path: '/slow.cgi?3' })).status).toBe(504);
      expect((await request(proxy.url, { path: '/index.html' })).status).toBe(200);
    });
  });

  it('answers 502 when Apache is down, and keeps serving', async () => {
    const closedPort = await freePort();
    await withProxy(
      'block:\n  - path: /xmlrpc.php\n',
      async (proxy) => {
        expect((await request(proxy.url, { path: '/index.html' })).status).toBe(502);
        expect((await request(proxy.url, { path: '/index.html' })).status).toBe(502);
        expect((await request(proxy.url, { path: '/xmlrpc.php' })).status).toBe(403);
        expect(proxy.logs.some((line) => String(line['msg']).startsWith('upstream is not accepting connections'))).toBe(true);
        // The operator hears about it once, not once per request.
        expect(proxy.logs.filter((line) => line['kind'] === 'upstream_unreachable')).toHaveLength(1);
      },
      `http://127.0.0.1:${closedPort}`,
    );
  });

  it('forwards bodies, and refuses bodies over request.max_body with 413, announced or chunked', async () => {
    await withProxy('request: { max_body: 1KiB }', async (proxy) => {
      const small = await request(proxy.url, { method: 'POST', path: '/echo.cgi', body: 'a'.repeat(1000) });
      expect(small).toMatchObject({ status: 200, body: 'method=POST length=1000\n' });
      const announced = await request(proxy.url, { method: 'POST', path: '/echo.cgi', body: 'a'.repeat(2048) });
      expect(announced.status).toBe(413);
      const chunked = await rawRequest(
        proxy.port,
        `POST /echo.cgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n800\r\n${'b'.repeat(2048)}\r\n0\r\n\r\n`,
      );
      expect(chunked.status).toBe(413);
      const chunkedSmall = await rawRequest(proxy.port, `POST /echo.cgi HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n10\r\n${'c'.repeat(16)}\r\n0\r\n\r\n`);
      expect(chunkedSmall.status).toBe(200);
      expect(chunkedSmall.text).toContain('length=16');
    });
  });

  it('strips hop-by-hop headers and keeps the Host the client sent', async () => {
    await withProxy('', async (proxy) => {
      const response = await rawRequest(proxy.port, 'GET /index.html HTTP/1.1\r\nHost: blog.example\r\nConnection: close\r\n\r\n');
      expect(response.status).toBe(200);
      expect(response.text).not.toMatch(/^keep-alive:/im);
      expect(response.text).toMatch(/^connection: close/im);
    });
  });
});

/** Requests holding an upstream slot right now. */
async function countInFlight(proxy: TestProxy): Promise<number> {
  return proxy.running.slots.inFlight;
}

/** Polls `condition` every 20 ms for at most 5 s. */
async function waitFor(condition: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('condition not met within 5 s');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
