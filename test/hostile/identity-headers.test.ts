import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { rawRequest } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

const SPOOFED = [
  'Forwarded: for=6.6.6.6;host=evil.test',
  'X-Forwarded-Host: evil.test',
  'X-Forwarded-Server: evil.test',
  'X-Forwarded-Port: 4443',
  'X-Client-IP: 6.6.6.6',
  'CF-Connecting-IP: 6.6.6.6',
  'True-Client-IP: 6.6.6.6',
  'X-Cluster-Client-IP: 6.6.6.6',
  'Fastly-Client-IP: 6.6.6.6',
  'X-Real-IP: 6.6.6.6',
  // What PHP's common get_client_ip() helpers try before REMOTE_ADDR (HTTP_CLIENT_IP first, then HTTP_X_FORWARDED, HTTP_FORWARDED_FOR).
  'Client-IP: 6.6.6.6',
  'X-Forwarded: for=6.6.6.6',
  'Forwarded-For: 6.6.6.6',
  'X-Originating-IP: 6.6.6.6',
  'X-Remote-IP: 6.6.6.6',
  'X-Remote-Addr: 6.6.6.6',
];

/**
 * What Apache is told about the client and the host comes from portcullis,
 * or from a trusted proxy, never from the client: WordPress plugins read
 * these headers for the client address and for the host of password-reset
 * links. Checked against what Apache's CGI environment really receives.
 */
describe('headers Apache receives', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    proxy = await startTestProxy(apache.url, 'clients:\n  trusted_proxies: ["127.62.0.0/16"]\n');
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  async function environment(headers: string[], localAddress = '127.61.1.1'): Promise<string> {
    const socket = `GET /env.cgi HTTP/1.1\r\nHost: site.test\r\n${headers.map((line) => `${line}\r\n`).join('')}Connection: close\r\n\r\n`;
    const { status, text } = await rawRequestFrom(socket, localAddress);
    expect(status).toBe(200);
    return text;
  }

  function rawRequestFrom(text: string, localAddress: string) {
    return rawRequest(proxy.port, text, 5_000, localAddress);
  }

  it('drops identity headers an untrusted client sends', async () => {
    const env = await environment(SPOOFED);
    expect(env).not.toContain('6.6.6.6');
    expect(env).not.toContain('evil.test');
    expect(env).not.toContain('4443');
    expect(env).toMatch(/^HTTP_X_REAL_IP=127\.61\.1\.1$/m);
    expect(env).toMatch(/^HTTP_X_FORWARDED_FOR=127\.61\.1\.1$/m);
  });

  it('keeps them from a trusted proxy', async () => {
    const env = await environment(['X-Forwarded-For: 203.0.113.7', 'X-Forwarded-Host: shop.test', 'CF-Connecting-IP: 203.0.113.7'], '127.62.1.1');
    expect(env).toMatch(/^HTTP_X_FORWARDED_HOST=shop\.test$/m);
    expect(env).toMatch(/^HTTP_CF_CONNECTING_IP=203\.0\.113\.7$/m);
    expect(env).toMatch(/^HTTP_X_REAL_IP=203\.0\.113\.7$/m);
  });

  it('never lets Connection nominate Host or the forwarding headers away', async () => {
    const env = await environment(['Connection: close, host, x-real-ip, x-forwarded-for']);
    expect(env).toMatch(/^HTTP_HOST=site\.test$/m);
    expect(env).toMatch(/^HTTP_X_REAL_IP=127\.61\.1\.1$/m);
    expect(env).toMatch(/^HTTP_X_FORWARDED_FOR=127\.61\.1\.1$/m);
  });

  it('still drops the headers Connection nominates, and hop-by-hop ones', async () => {
    const env = await environment(['Connection: close, x-secret', 'X-Secret: 1', 'Keep-Alive: timeout=99', 'X-Kept: yes']);
    expect(env).not.toContain('HTTP_X_SECRET');
    expect(env).not.toContain('HTTP_KEEP_ALIVE');
    expect(env).toMatch(/^HTTP_X_KEPT=yes$/m);
  });
});
