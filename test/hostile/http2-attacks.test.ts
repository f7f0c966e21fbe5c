import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { holdsWithin } from '../support/holds-within.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import {
  continuationFrame,
  dataFrame,
  ERROR,
  FLAG,
  headersFrame,
  literalField,
  pingFrame,
  RawHttp2Connection,
  requestBlock,
  rstStreamFrame,
  settingsFrame,
} from '../support/raw-http2.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

const AUTHORITY = 'site.test';

/**
 * The known HTTP/2 attacks against a real Apache behind portcullis, each
 * crafted frame by frame on a raw TLS socket (or with Node's http2 client
 * where it suffices): each is stopped (session ended), counted in
 * portcullis_http2_abuse_total{kind}, struck, and Apache sees no request for
 * it. Every attacker has an address of its own, so one test's strikes never
 * decide another's. Every flood is bounded in frames and in time.
 */
describe('HTTP/2 attacks', () => {
  let apache: ApacheHandle;
  let ca: TestCa;
  let proxy: TestProxy;
  let tlsPort: number;

  beforeAll(async () => {
    // With scripts: slow.cgi keeps a request at Apache for as long as a test needs.
    apache = await startApacheWithScripts();
    ca = await createTestCa();
    const site = await ca.issue([AUTHORITY]);
    proxy = await startTestProxy(
      apache.url,
      [
        'timeouts:',
        '  client_keepalive: 1s',
        '  client_headers: 1s',
        '  client_request: 2s',
        'tls:',
        `  certificates: [{ cert: "${site.certFile}", key: "${site.keyFile}" }]`,
      ].join('\n'),
      {
        listenYaml: '[{ address: "127.0.0.1:0", tls: true }]',
        tls: { secure: { key: site.key, cert: site.cert, ALPNProtocols: ['h2', 'http/1.1'], minVersion: 'TLSv1.2' }, handshakeTimeoutMs: 1_000 },
      },
    );
    tlsPort = proxy.running.addresses[0]?.port as number;
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await ca?.remove();
  });

  async function metric(pattern: RegExp): Promise<number> {
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    return Number(pattern.exec(text)?.[1] ?? 0);
  }
  const abuse = (kind: string) => metric(new RegExp(`^portcullis_http2_abuse_total\\{kind="${kind}"\\} (\\d+)`, 'm'));
  const strikes = (rule: string) => metric(new RegExp(`^portcullis_strikes_total\\{rule="${rule}"\\} (\\d+)`, 'm'));
  const apacheSeen = async () => (await apache.accessLog()).length;
  const open = (localAddress: string, ackSettings = true) => RawHttp2Connection.open(tlsPort, { ca: ca.ca, servername: AUTHORITY, localAddress, ackSettings });

  /** Runs `attack` and checks the verdict: session ended within `withinMs`, counted as `kind`, one strike, nothing for Apache. */
  async function expectStopped(kind: string, attack: () => Promise<RawHttp2Connection>, withinMs = 3_000): Promise<RawHttp2Connection> {
    const [abuseBefore, strikesBefore, apacheBefore] = [await abuse(kind), await strikes('http2_abuse'), await apacheSeen()];
    const connection = await attack();
    try {
      expect(await connection.waitClosed(withinMs), 'session ended').toBe(true);
      // Strikes are counted as the session ends: give the proxy its turn.
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(await abuse(kind), `portcullis_http2_abuse_total{kind="${kind}"}`).toBe(abuseBefore + 1);
      expect(await strikes('http2_abuse')).toBe(strikesBefore + 1);
      // Anything forwarded would be logged within this.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await apacheSeen(), 'requests Apache saw').toBe(apacheBefore);
    } finally {
      connection.destroy();
    }
    return connection;
  }

  it('ends a rapid-reset session (CVE-2023-44487: streams opened and cancelled at once) with GOAWAY ENHANCE_YOUR_CALM', async () => {
    const connection = await expectStopped('rapid_reset', async () => {
      const c = await open('127.98.1.1');
      // HEADERS and RST_STREAM in the same write: the stream is gone before any answer could be.
      await c.flood(2_000, (i) => Buffer.concat([headersFrame(1 + 2 * i, requestBlock(AUTHORITY, '/index.html')), rstStreamFrame(1 + 2 * i)]));
      return c;
    });
    expect(connection.goawayCode).toBe(ERROR.ENHANCE_YOUR_CALM);
  });

  it('ends a rapid reset made with Node\'s own http2 client (request, then close with CANCEL, in a loop)', async () => {
    const [before, strikesBefore] = [await abuse('rapid_reset'), await strikes('http2_abuse')];
    const session = http2.connect(`https://${AUTHORITY}:${tlsPort}`, { ca: ca.ca, servername: AUTHORITY, host: '127.0.0.1', localAddress: '127.98.1.2' } as http2.SecureClientSessionOptions);
    session.on('error', () => {});
    await new Promise<void>((resolve, reject) => (session.once('connect', () => resolve()), session.once('error', reject)));
    expect(await metric(/^portcullis_client_connections (\d+)/m)).toBe(1);
    try {
      // Twice the reset budget, bounded in time too.
      const deadline = performance.now() + 5_000;
      for (let i = 0; i < 400 && !session.destroyed && performance.now() < deadline; i++) {
        const stream = session.request({ ':path': '/index.html' });
        stream.on('error', () => {});
        stream.close(http2.constants.NGHTTP2_CANCEL);
        if (i % 20 === 19) await new Promise((resolve) => setImmediate(resolve));
      }
      // Node's client, flooding in the same process, does not always notice
      // the GOAWAY and the close that follow: the proxy's side tells.
      const deadline2 = performance.now() + 3_000;
      while ((await metric(/^portcullis_client_connections (\d+)/m)) > 0 && performance.now() < deadline2) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await metric(/^portcullis_client_connections (\d+)/m), 'connections the proxy still has open').toBe(0);
      expect(await abuse('rapid_reset')).toBe(before + 1);
      expect(await strikes('http2_abuse')).toBe(strikesBefore + 1);
    } finally {
      session.destroy();
    }
  });

  it('lets a client cancel a few streams (a browser leaving a page) and go on using the session', async () => {
    const session = http2.connect(`https://${AUTHORITY}:${tlsPort}`, { ca: ca.ca, servername: AUTHORITY, host: '127.0.0.1', localAddress: '127.98.1.3' } as http2.SecureClientSessionOptions);
    session.on('error', () => {});
    try {
      for (let i = 0; i < 30; i++) session.request({ ':path': '/index.html' }).on('error', () => {}).close(http2.constants.NGHTTP2_CANCEL);
      const status = await new Promise<number>((resolve) => {
        const stream = session.request({ ':path': '/index.html' });
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.on('error', () => resolve(0));
        stream.on('close', () => resolve(0));
        stream.resume();
      });
      expect(status).toBe(200);
      expect(session.closed || session.destroyed).toBe(false);
    } finally {
      session.destroy();
    }
  });

  it('ends a CONTINUATION flood (a header block that never ends) at once, before any request exists', async () => {
    await expectStopped('continuation_flood', async () => {
      const c = await open('127.98.2.1');
      c.write(headersFrame(1, requestBlock(AUTHORITY, '/index.html'), FLAG.END_STREAM));
      await c.flood(10_000, (i) => continuationFrame(1, literalField(`x-flood-${i % 16}`, 'v'.repeat(32))));
      return c;
    }, 2_000);
  });

  it('refuses a request with too many header fields or too large a header list, and ends a session that keeps sending them', async () => {
    const tooMany = [requestBlock(AUTHORITY, '/index.html', Array.from({ length: 200 }, (_, i) => literalField(`x-field-${i}`, 'v')))][0] as Buffer;
    const apacheBefore = await apacheSeen();
    const one = await open('127.98.3.1');
    one.write(headersFrame(1, tooMany));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(one.resetCodes).toEqual([ERROR.ENHANCE_YOUR_CALM]);
    expect(one.closed).toBe(false);
    one.destroy();
    expect(await apacheSeen()).toBe(apacheBefore);

    await expectStopped('refused_streams', async () => {
      const c = await open('127.98.3.2');
      await c.flood(3_000, (i) => headersFrame(1 + 2 * i, tooMany), 20);
      return c;
    });
    // 45 KB of header fields, each CONTINUATION within the 16 KB frame size: past the 32 KB header list.
    const large = requestBlock(AUTHORITY, '/index.html', [literalField('x-a', 'v'.repeat(15_000)), literalField('x-b', 'v'.repeat(15_000)), literalField('x-c', 'v'.repeat(15_000))]);
    await expectStopped('refused_streams', async () => {
      const c = await open('127.98.3.3');
      await c.flood(1_000, (i) => Buffer.concat([
        headersFrame(1 + 2 * i, large.subarray(0, 16_000), FLAG.END_STREAM),
        continuationFrame(1 + 2 * i, large.subarray(16_000, 32_000)),
        continuationFrame(1 + 2 * i, large.subarray(32_000), true),
      ]), 10);
      return c;
    });
  });

  it('ends a PING flood', async () => {
    await expectStopped('ping_flood', async () => {
      const c = await open('127.98.4.1');
      await c.flood(20_000, (i) => pingFrame(i));
      return c;
    });
  });

  it('ends a SETTINGS flood', async () => {
    await expectStopped('settings_flood', async () => {
      const c = await open('127.98.4.2');
      await c.flood(20_000, () => settingsFrame());
      return c;
    });
  });

  it('ends a flood of empty DATA frames (CVE-2019-9518), and the half-sent request never reaches Apache', async () => {
    await expectStopped('invalid_frames', async () => {
      const c = await open('127.98.4.3');
      c.write(headersFrame(1, requestBlock(AUTHORITY, '/index.html', [], 'POST'), FLAG.END_HEADERS));
      await c.flood(20_000, () => dataFrame(1));
      return c;
    });
  });

  it('caps concurrent streams at 100: a client past the cap has its session ended, and only the 100 it may have reach Apache', async () => {
    for (const [address, ackSettings] of [['127.98.5.1', true], ['127.98.5.2', false]] as const) {
      const [before, strikesBefore, apacheBefore] = [await abuse('concurrent_streams'), await strikes('http2_abuse'), await apacheSeen()];
      const c = await open(address, ackSettings);
      // All in one write: nghttp2 reads them before any answer could close a stream.
      c.write(Buffer.concat(Array.from({ length: 300 }, (_, i) => headersFrame(1 + 2 * i, requestBlock(AUTHORITY, '/index.html')))));
      expect(await c.waitClosed(3_000), `session ended (SETTINGS ${ackSettings ? 'acknowledged' : 'not acknowledged'})`).toBe(true);
      c.destroy();
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(await abuse('concurrent_streams')).toBe(before + 1);
      expect(await strikes('http2_abuse')).toBe(strikesBefore + 1);
      expect((await apacheSeen()) - apacheBefore).toBeLessThanOrEqual(100);
      if (!ackSettings) expect(c.resetCodes).toContain(ERROR.REFUSED_STREAM);
    }
  });

  it('closes a session that opens and sends nothing after timeouts.client_keepalive, without a strike', async () => {
    const strikesBefore = await strikes('http2_abuse');
    const c = await open('127.98.6.1');
    expect(await c.waitClosed(3_500)).toBe(true);
    expect((c.closedAtMs as number) - c.openedAtMs).toBeGreaterThanOrEqual(900);
    expect(c.goawayCode).toBe(ERROR.NO_ERROR);
    expect(await strikes('http2_abuse')).toBe(strikesBefore);
  });

  it('closes an idle session even while the client keeps it busy with PINGs', async () => {
    const c = await open('127.98.6.2');
    const pinger = setInterval(() => c.write(pingFrame(1)), 200);
    try {
      expect(await c.waitClosed(4_000)).toBe(true);
    } finally {
      clearInterval(pinger);
      c.destroy();
    }
  });

  it('closes a session whose header block never ends (HEADERS without END_HEADERS, then silence), and strikes it as a slow client', async () => {
    const strikesBefore = await strikes('client_timeout');
    const c = await open('127.98.6.3');
    c.write(headersFrame(1, requestBlock(AUTHORITY, '/index.html'), FLAG.END_STREAM));
    // Idle after client_keepalive (GOAWAY), cut when it still would not close: checked once a second.
    expect(await c.waitClosed(5_000)).toBe(true);
    c.destroy();
    expect(await strikes('client_timeout')).toBe(strikesBefore + 1);
  });

  it('cancels a stream whose request body never comes within timeouts.client_request, strikes it, and Apache sees nothing', async () => {
    const [strikesBefore, apacheBefore] = [await strikes('client_timeout'), await apacheSeen()];
    const c = await open('127.98.6.4');
    const pinger = setInterval(() => c.write(pingFrame(2)), 200);
    try {
      c.write(headersFrame(1, requestBlock(AUTHORITY, '/index.html', [literalField('content-length', '10')], 'POST'), FLAG.END_HEADERS));
      const deadline = performance.now() + 4_000;
      while (c.resetCodes.length === 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(c.resetCodes).toEqual([ERROR.CANCEL]);
      expect(await strikes('client_timeout')).toBe(strikesBefore + 1);
      expect(await apacheSeen()).toBe(apacheBefore);
    } finally {
      clearInterval(pinger);
      c.destroy();
    }
  });

  // Last in this describe: Apache logs the cancelled requests when its script ends, seconds later,
  // which would count against the "Apache sees nothing" checks of any test after it.
  it('treats a stream the client cancels while Apache works on it as a client gone: the upstream request is dropped and its slot freed at once', async () => {
    const session = http2.connect(`https://${AUTHORITY}:${tlsPort}`, { ca: ca.ca, servername: AUTHORITY, host: '127.0.0.1', localAddress: '127.98.9.1' } as http2.SecureClientSessionOptions);
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

/**
 * New TLS handshakes per client address have a bucket of their own
 * (`connections.tls_handshakes`), checked at TCP accept: past it the
 * connection is closed before any TLS work (no ServerHello), counted and
 * struck; trusted proxies are exempt.
 */
describe('TLS handshakes per client address', () => {
  let apache: ApacheHandle;
  let ca: TestCa;
  let proxy: TestProxy;
  let tlsPort: number;

  beforeAll(async () => {
    apache = await startApache();
    ca = await createTestCa();
    const site = await ca.issue([AUTHORITY]);
    proxy = await startTestProxy(
      apache.url,
      [
        'clients:',
        '  trusted_proxies: ["127.97.2.0/24"]',
        'connections:',
        '  tls_handshakes: { rate: 1/s, burst: 5 }',
        'tls:',
        `  certificates: [{ cert: "${site.certFile}", key: "${site.keyFile}" }]`,
      ].join('\n'),
      {
        listenYaml: '[{ address: "127.0.0.1:0", tls: true }]',
        tls: { secure: { key: site.key, cert: site.cert, ALPNProtocols: ['h2', 'http/1.1'], minVersion: 'TLSv1.2' }, handshakeTimeoutMs: 1_000 },
      },
    );
    tlsPort = proxy.running.addresses[0]?.port as number;
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await ca?.remove();
  });

  async function metric(pattern: RegExp): Promise<number> {
    const text = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    return Number(pattern.exec(text)?.[1] ?? 0);
  }

  /** One TLS connection from `localAddress`: whether its handshake completed, and how many bytes the server sent if not. */
  function handshake(localAddress: string): Promise<{ secure: boolean; bytes: number }> {
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: tlsPort, localAddress });
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      socket.on('error', () => {});
      socket.on('connect', () => {
        const client = tls.connect({ socket, servername: AUTHORITY, ca: ca.ca });
        client.on('error', () => {});
        client.on('secureConnect', () => {
          client.destroy();
          resolve({ secure: true, bytes });
        });
      });
      socket.on('close', () => resolve({ secure: false, bytes }));
    });
  }

  it('closes new connections past the burst before any TLS work, and strikes each', async () => {
    const [refusedBefore, strikesBefore] = [
      await metric(/^portcullis_connections_refused_total\{reason="tls_handshakes"\} (\d+)/m),
      await metric(/^portcullis_strikes_total\{rule="tls_handshakes"\} (\d+)/m),
    ];
    const outcomes = [];
    for (let i = 0; i < 12; i++) outcomes.push(await handshake('127.97.1.1'));
    // 1/s refills at most one more while these run.
    const secure = outcomes.filter((outcome) => outcome.secure).length;
    expect(secure).toBeGreaterThanOrEqual(5);
    expect(secure).toBeLessThanOrEqual(6);
    expect(outcomes.slice(0, 5).every((outcome) => outcome.secure)).toBe(true);
    const refused = outcomes.filter((outcome) => !outcome.secure);
    expect(refused.every((outcome) => outcome.bytes === 0), 'no ServerHello for a refused connection').toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await metric(/^portcullis_connections_refused_total\{reason="tls_handshakes"\} (\d+)/m)).toBe(refusedBefore + refused.length);
    expect(await metric(/^portcullis_strikes_total\{rule="tls_handshakes"\} (\d+)/m)).toBe(strikesBefore + refused.length);
  });

  it('keeps one address\'s bucket from another\'s, and exempts trusted proxies', async () => {
    expect((await handshake('127.97.1.2')).secure).toBe(true);
    const trusted = [];
    for (let i = 0; i < 12; i++) trusted.push(await handshake('127.97.2.1'));
    expect(trusted.every((outcome) => outcome.secure)).toBe(true);
  });
});
