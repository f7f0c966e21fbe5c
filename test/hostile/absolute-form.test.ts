import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { rawRequest } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/**
 * One target, one decision: an absolute-form target is decided on and
 * forwarded as the same origin-form bytes, for plain requests and upgrades,
 * so no URL parser between the block and Apache can turn an allowed
 * spelling into the blocked script.
 */
describe('absolute-form request targets', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    proxy = await startTestProxy(apache.url, 'block:\n  - path: /xmlrpc.php\n');
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  /** Sends `target` raw through the proxy (closing the connection) and returns the status and what Apache mapped. */
  async function through(method: string, target: string, extraHeaders = ''): Promise<{ status: number; text: string; apacheSaw: string[] }> {
    const before = (await apache.accessLog()).length;
    const answer = await rawRequest(proxy.port, `${method} ${target} HTTP/1.1\r\nHost: portcullis.test\r\nConnection: close\r\n${extraHeaders}Content-Length: 0\r\n\r\n`);
    // Blocked requests leave no line; give forwarded ones the moment Apache needs to write theirs.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const entries = (await apache.accessLog()).slice(before);
    return { ...answer, apacheSaw: entries.map((entry) => `${entry.requestLine} -> ${entry.filename}`) };
  }

  /** Lines where Apache mapped the request to the real xmlrpc.php (not a missing file whose name ends in it). */
  const ranXmlrpc = (lines: string[]) => lines.filter((line) => line.endsWith(` -> ${apache.root}/xmlrpc.php`));

  it.each([
    ['POST', 'http://portcullis.test/foo\\..\\xmlrpc.php'],
    ['POST', 'http://portcullis.test/foo\\..\\..\\xmlrpc.php'],
    ['GET', 'http://portcullis.test/a/b\\..\\..\\xmlrpc.php'],
    ['POST', 'HTTP://portcullis.test/./xmlrpc.php'],
    ['POST', 'http://portcullis.test//xmlrpc.php'],
    ['POST', 'http://portcullis.test/%78mlrpc.php'],
    ['POST', 'http://portcullis.test/a/%2e%2e/xmlrpc.php'],
  ])('%s %s never runs xmlrpc.php', async (method, target) => {
    const { status, apacheSaw } = await through(method, target);
    expect(ranXmlrpc(apacheSaw), `status ${status}`).toEqual([]);
  });

  it('forwards the path byte for byte: Apache sees the backslashes the block saw', async () => {
    const { status, apacheSaw } = await through('GET', 'http://portcullis.test/foo\\..\\index.html?x=1');
    expect(status).toBe(404);
    expect(apacheSaw).toHaveLength(1);
    // Apache's %r escapes a backslash as \\.
    expect(apacheSaw[0]).toMatch(/^GET \/foo\\\\\.\.\\\\index\.html\?x=1 HTTP\/1\.1 -> /);
  });

  it('sends the target\'s authority as Host, as Apache picks the vhost by it (RFC 9112 §3.2.2)', async () => {
    const { status, text } = await through('GET', 'http://other.test:8080/env.cgi', 'X-Probe: 1\r\n');
    expect(status).toBe(200);
    expect(text).toMatch(/^REQUEST_URI=\/env\.cgi$/m);
    expect(text).toMatch(/^HTTP_HOST=other\.test:8080$/m);
  });

  it('refuses an absolute-form target whose authority cannot be read unambiguously, with 400', async () => {
    for (const target of ['http://user@portcullis.test/index.html', 'http:///index.html', 'ftp://portcullis.test/index.html']) {
      expect((await through('GET', target)).status, target).toBe(400);
    }
  });

  it('decides on and forwards an upgrade\'s absolute-form target the same way', async () => {
    const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\n';
    for (const target of ['http://portcullis.test/foo\\..\\xmlrpc.php', 'http://portcullis.test/a/..//xmlrpc.php']) {
      const { apacheSaw } = await through('GET', target, upgrade);
      expect(ranXmlrpc(apacheSaw), target).toEqual([]);
    }
    const { apacheSaw } = await through('GET', 'http://portcullis.test/foo\\..\\index.html', upgrade);
    expect(apacheSaw[0]).toMatch(/^GET \/foo\\\\\.\.\\\\index\.html HTTP\/1\.1 -> /);
  });
});
