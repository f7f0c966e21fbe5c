import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';

/** A small origin that says which one it is. */
async function origin(name: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    res.end(`${name} ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(() => resolve()))),
  };
}

describe('several listeners', () => {
  let main: Awaited<ReturnType<typeof origin>>;
  let other: Awaited<ReturnType<typeof origin>>;
  let proxy: TestProxy;

  beforeAll(async () => {
    main = await origin('main');
    other = await origin('other');
    proxy = await startTestProxy(main.url, 'block:\n  - path: /xmlrpc.php\n', {
      listenYaml: `["127.0.0.1:0", { address: "127.0.0.1:0", upstream: "${other.url}" }, "[::1]:0"]`,
    });
  });

  afterAll(async () => {
    await proxy?.close();
    await main?.close();
    await other?.close();
  });

  it('forwards each listener to its own upstream, the top-level one by default, on IPv4 and IPv6', async () => {
    const [first, second, v6] = proxy.running.addresses;
    expect((await request(`http://127.0.0.1:${first?.port}`, { path: '/a' })).body).toBe('main /a');
    expect((await request(`http://127.0.0.1:${second?.port}`, { path: '/b' })).body).toBe('other /b');
    expect(v6?.family).toBe('IPv6');
    expect((await request(`http://[::1]:${v6?.port}`, { path: '/c' })).body).toBe('main /c');
  });

  it('applies the same policy on every listener', async () => {
    for (const address of proxy.running.addresses) {
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      expect((await request(`http://${host}:${address.port}`, { path: '/xmlrpc.php' })).status).toBe(403);
    }
  });
});
