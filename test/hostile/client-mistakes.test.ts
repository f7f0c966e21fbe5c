import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { rawRequest } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/**
 * A client's mistakes are the client's: answered 4xx (or 501, as Apache
 * does) by portcullis, never passed on to fail upstream, and never counted in
 * portcullis_upstream_errors_total, which feeds the "upstream failing" alert.
 */
describe('client mistakes are not upstream failures', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    proxy = await startTestProxy(apache.url, '');
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  async function upstreamErrors(): Promise<number> {
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    return [...text.matchAll(/^portcullis_upstream_errors_total\{[^}]*\} (\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0);
  }

  it.each([
    ['two Host headers', 'GET /index.html HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n', 400],
    ['a transfer coding other than chunked', 'POST /echo.cgi HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 501],
    ['* with a method other than OPTIONS', 'GET * HTTP/1.1\r\nHost: a.test\r\n\r\n', 400],
  ])('%s: refused with %s by portcullis', async (_what, text, status) => {
    const before = await upstreamErrors();
    const answer = await rawRequest(proxy.port, text.replace('\r\n\r\n', '\r\nConnection: close\r\n\r\n'));
    expect(answer.status).toBe(status);
    expect(await upstreamErrors()).toBe(before);
  });

  it.each([
    ['origin-form', 'GET /index.html#/../xmlrpc.php HTTP/1.1'],
    ['absolute-form', 'GET http://a.test/index.html#top HTTP/1.1'],
  ])('a fragment in an %s target is refused with 400 by portcullis, as Apache refuses it, and never reaches Apache', async (_form, requestLine) => {
    const seen = (await apache.accessLog()).length;
    const answer = await rawRequest(proxy.port, `${requestLine}\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
    expect(answer.status).toBe(400);
    // Anything forwarded would be logged within this.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await apache.accessLog()).length).toBe(seen);
  });

  it('OPTIONS * is answered without a 502', async () => {
    const before = await upstreamErrors();
    const answer = await rawRequest(proxy.port, 'OPTIONS * HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    expect(answer.status).toBe(200);
    expect(answer.text).toMatch(/^allow: .*GET/im);
    expect(await upstreamErrors()).toBe(before);
  });

  it('counts a malformed request as a strike, like a bad target', async () => {
    const strikes = async () => {
      const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
      return Number(/^portcullis_strikes_total\{rule="malformed"\} (\d+)/m.exec(text)?.[1] ?? 0);
    };
    const before = await strikes();
    // Not from 127.0.0.1, which is never banned and so never struck.
    await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\nConnection: close\r\n\r\n', 5_000, '127.63.1.1');
    expect(await strikes()).toBe(before + 1);
  });
});
