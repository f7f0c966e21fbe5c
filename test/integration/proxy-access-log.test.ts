import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/** Apache's combined format: host, ident, user, [time], "request", status, bytes, "referer", "agent". */
const COMBINED = /^(\S+) - - \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;

describe('access log of forwarded requests', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;
  let dir: string;
  let path: string;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    dir = await mkdtemp(join(tmpdir(), 'portcullis-access-'));
    path = join(dir, 'access.log');
    proxy = await startTestProxy(apache.url, `access_log: "${path}"\nblock:\n  - path: /xmlrpc.php\n`);
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Lines written so far, waiting (bounded) until there are `n`. */
  async function lines(n: number): Promise<string[]> {
    for (let i = 0; i < 100; i++) {
      const text = await readFile(path, 'utf8').catch(() => '');
      const found = text.split('\n').filter((line) => line !== '');
      if (found.length >= n) return found;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`fewer than ${n} access log lines in ${path}`);
  }

  it('writes one combined line per forwarded request, with the client, status and body bytes; none for refusals', async () => {
    const page = await request(proxy.url, { path: '/index.html?x=1', localAddress: '127.0.95.1', headers: { referer: 'http://example.com/', 'user-agent': 'agent "quoted"\tX' } });
    const cgi = await request(proxy.url, { method: 'POST', path: '/echo.cgi', body: 'abc', localAddress: '127.0.95.2' });
    expect((await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: 'x', localAddress: '127.0.95.3' })).status).toBe(403);
    await request(proxy.url, { method: 'HEAD', path: '/index.html', localAddress: '127.0.95.4' });

    const written = await lines(3);
    expect(written).toHaveLength(3);
    const [first, second, third] = written.map((line) => COMBINED.exec(line));
    expect(first?.slice(1, 8).filter((_, i) => i !== 1)).toEqual(['127.0.95.1', 'GET /index.html?x=1 HTTP/1.1', '200', String(Buffer.byteLength(page.body)), 'http://example.com/', 'agent \\"quoted\\"\\tX']);
    expect(second?.slice(3, 6)).toEqual(['POST /echo.cgi HTTP/1.1', '200', String(Buffer.byteLength(cgi.body))]);
    expect(cgi.headers['content-length']).toBeUndefined();
    expect(third?.slice(1, 6).filter((_, i) => i !== 1)).toEqual(['127.0.95.4', 'HEAD /index.html HTTP/1.1', '200', '-']);
  });

  it('writes to a fresh file at the path after logrotate moved it and asked for a reopen', async () => {
    await rename(path, `${path}.1`);
    await proxy.running.reopenAccessLog();
    await request(proxy.url, { path: '/index.html', localAddress: '127.0.95.5' });
    const fresh = await lines(1);
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).toMatch(/^127\.0\.95\.5 /);
  });
});
