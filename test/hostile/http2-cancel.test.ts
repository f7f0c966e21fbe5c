import http2 from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

const AUTHORITY = 'site.test';

/**
 * An HTTP/2 client that cancels its stream (RST_STREAM) is a client gone, as
 * one closing its HTTP/1.1 connection is: the upstream request is dropped at
 * once and its slot freed, so Apache works for nobody no longer than it
 * must and a client cannot hold slots by asking and cancelling. Real Apache,
 * real TLS, Node's own http2 client.
 */
describe('an HTTP/2 stream cancelled while Apache works on it', () => {
  let apache: ApacheHandle;
  let ca: TestCa;
  let proxy: TestProxy;
  let tlsPort: number;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    ca = await createTestCa();
    const site = await ca.issue([AUTHORITY]);
    proxy = await startTestProxy(apache.url, `tls:\n  certificates: [{ cert: "${site.certFile}", key: "${site.keyFile}" }]`, {
      listenYaml: '[{ address: "127.0.0.1:0", tls: true }]',
      tls: { secure: { key: site.key, cert: site.cert, ALPNProtocols: ['h2', 'http/1.1'], minVersion: 'TLSv1.2' }, handshakeTimeoutMs: 1_000 },
    });
    tlsPort = proxy.running.addresses[0]?.port as number;
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await ca?.remove();
  });

  /** Polls `check` every 20 ms for at most `withinMs`; whether it came to hold. */
  async function holdsWithin(withinMs: number, check: () => boolean): Promise<boolean> {
    const deadline = Date.now() + withinMs;
    while (Date.now() < deadline) {
      if (check()) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return check();
  }

  it('frees the upstream slot at once, not when Apache answers', async () => {
    const session = http2.connect(`https://${AUTHORITY}:${tlsPort}`, { ca: ca.ca, servername: AUTHORITY, host: '127.0.0.1', localAddress: '127.97.1.1' } as http2.SecureClientSessionOptions);
    session.on('error', () => {});
    try {
      // The script answers after 4 s; the client gives up once Apache has it.
      const streams = Array.from({ length: 3 }, () => session.request({ ':path': '/slow.cgi?4' }).on('error', () => {}));
      expect(await holdsWithin(3_000, () => proxy.running.slots.inFlight === 3), 'the requests hold slots').toBe(true);
      for (const stream of streams) stream.close(http2.constants.NGHTTP2_CANCEL);
      expect(await holdsWithin(1_500, () => proxy.running.slots.inFlight === 0), 'slots freed well before Apache answers').toBe(true);
      // The session itself is fine: a browser leaving a page is no attack.
      const status = await new Promise<number>((resolve) => {
        const stream = session.request({ ':path': '/index.html' });
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.on('error', () => resolve(0));
        stream.resume();
      });
      expect(status).toBe(200);
    } finally {
      session.destroy();
    }
  });
});
