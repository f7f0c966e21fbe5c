import http2 from 'node:http2';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

const AUTHORITY = 'site.test';

/** Answers every request with `head` (status line and fields as given), then `body`, on a raw socket: bytes an HTTP/1.1 upstream may send. */
const ANSWERS: Readonly<Record<string, string>> = {
  // Apache's `Header always add X-Content-Type-Options nosniff` on top of a PHP page's own.
  '/twice': 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Content-Type-Options: nosniff\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 3\r\n\r\nok\n',
  '/two-locations': 'HTTP/1.1 302 Found\r\nLocation: /a\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n',
  '/settings': 'HTTP/1.1 200 OK\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nProxy-Connection: keep-alive\r\nContent-Length: 3\r\n\r\nok\n',
};

/**
 * Fields an HTTP/1.1 upstream may send that HTTP/2 forbids (a single-value
 * field twice, connection-specific ones): Node's HTTP/2 throws on them, and
 * the throw used to end the process, every site with it.
 */
describe('upstream fields HTTP/2 forbids', () => {
  let upstream: net.Server;
  let ca: TestCa;
  let proxy: TestProxy;
  let tlsPort: number;

  beforeAll(async () => {
    upstream = net.createServer((socket) => {
      socket.on('error', () => {});
      let seen = '';
      socket.on('data', (chunk: Buffer) => {
        seen += chunk.toString('latin1');
        const end = seen.indexOf('\r\n\r\n');
        if (end < 0) return;
        const path = /^[A-Z]+ (\S+)/.exec(seen)?.[1] ?? '/';
        seen = seen.slice(end + 4);
        socket.write(ANSWERS[path] ?? 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n');
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    ca = await createTestCa();
    const site = await ca.issue([AUTHORITY]);
    proxy = await startTestProxy(`http://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`, `tls:\n  certificates: [{ cert: "${site.certFile}", key: "${site.keyFile}" }]`, {
      listenYaml: '[{ address: "127.0.0.1:0", tls: true }]',
      tls: { secure: { key: site.key, cert: site.cert, ALPNProtocols: ['h2', 'http/1.1'], minVersion: 'TLSv1.2' }, handshakeTimeoutMs: 1_000 },
    });
    tlsPort = proxy.running.addresses[0]?.port as number;
  });

  afterAll(async () => {
    await proxy?.close();
    await new Promise((resolve) => upstream?.close(resolve));
    await ca?.remove();
  });

  it('passes them on as HTTP/2 may carry them: a repeated single-value field once, connection-specific ones not at all', async () => {
    const session = http2.connect(`https://${AUTHORITY}:${tlsPort}`, { ca: ca.ca, servername: AUTHORITY, host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    session.on('error', () => {});
    const ask = (path: string) =>
      new Promise<http2.IncomingHttpHeaders | null>((resolve) => {
        const stream = session.request({ ':path': path });
        stream.on('response', (headers) => resolve(headers));
        stream.on('error', () => resolve(null));
        stream.on('close', () => resolve(null));
        stream.resume();
      });
    try {
      expect(await ask('/twice')).toMatchObject({ ':status': 200, 'x-content-type-options': 'nosniff' });
      expect(await ask('/two-locations')).toMatchObject({ ':status': 302, location: '/a' });
      const settings = await ask('/settings');
      expect(settings).toMatchObject({ ':status': 200 });
      expect(settings).not.toHaveProperty('http2-settings');
      // And the process is still there to answer.
      expect(await ask('/plain')).toMatchObject({ ':status': 200 });
    } finally {
      session.destroy();
    }
  });
});
