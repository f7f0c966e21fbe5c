import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

/*
 * The site of an HTTP/2 request: `:authority`, unless a Host header came
 * with it (then Host, which is what portcullis forwards and Apache uses).
 * Checked against a real Apache's %v log.
 */
describe('sites over HTTP/2', () => {
  let apache: ApacheHandle;
  let ca: TestCa;
  let proxy: TestProxy;
  let tlsPort: number;

  beforeAll(async () => {
    apache = await startApacheWithScripts({ virtualHosts: [{ serverName: 'blog.test' }, { serverName: 'jetpack.test' }] });
    ca = await createTestCa();
    const certificate = await ca.issue(['blog.test', 'jetpack.test']);
    proxy = await startTestProxy(
      apache.url,
      `block:
  - path: /xmlrpc.php
tls:
  certificates: [{ cert: "${certificate.certFile}", key: "${certificate.keyFile}" }]
sites:
  - name: blog
    hosts: [blog.test]
    default: true
  - name: jetpack
    hosts: [jetpack.test]
    disable: [/xmlrpc.php]
`,
      { listenYaml: '[{ address: "127.0.0.1:0", tls: true }]' },
    );
    tlsPort = proxy.port;
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await ca?.remove();
  });

  /** One HTTP/2 request on a session to `servername`; resolves with its status. */
  function exchange(servername: string, headers: http2.OutgoingHttpHeaders): Promise<number> {
    const session = http2.connect(`https://${servername}:${tlsPort}`, { ca: ca.ca, servername, host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    return new Promise<number>((resolve, reject) => {
      const stream = session.request(headers);
      let status = 0;
      stream.on('response', (head) => (status = Number(head[':status'])));
      stream.resume();
      stream.on('end', () => resolve(status));
      stream.on('error', reject);
      stream.end();
    }).finally(() => session.close());
  }

  const vhostOf = async (marker: string): Promise<string | undefined> =>
    (await apache.waitForAccessLog((entries) => entries.some((entry) => entry.requestLine.includes(marker)))).find((entry) => entry.requestLine.includes(marker))?.vhost;

  it('chooses the site by :authority, which Apache serves from that vhost', async () => {
    expect(await exchange('blog.test', { ':method': 'POST', ':path': '/xmlrpc.php?h1', ':authority': 'jetpack.test' })).toBe(200);
    expect(await vhostOf('?h1')).toBe('jetpack.test');
    expect(await exchange('jetpack.test', { ':method': 'POST', ':path': '/xmlrpc.php?h2', ':authority': 'Blog.Test:443' })).toBe(403);
  });

  it('chooses by Host when one came with :authority, as it is Host that is forwarded', async () => {
    expect(await exchange('blog.test', { ':method': 'POST', ':path': '/xmlrpc.php?h3', ':authority': 'blog.test', host: 'jetpack.test' })).toBe(200);
    expect(await vhostOf('?h3')).toBe('jetpack.test');
    const before = (await apache.accessLog()).length;
    expect(await exchange('jetpack.test', { ':method': 'POST', ':path': '/xmlrpc.php?h4', ':authority': 'jetpack.test', host: 'blog.test' })).toBe(403);
    expect((await apache.accessLog()).length).toBe(before);
  });
});
