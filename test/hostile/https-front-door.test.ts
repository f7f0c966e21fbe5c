import { execFile } from 'node:child_process';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { rawRequest, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

const run = promisify(execFile);

/**
 * The HTTPS front door against a real Apache, with real TLS clients (curl and
 * Node's http2 client): every protection of the plain port holds on the TLS
 * port, over HTTP/1.1 and HTTP/2, and a banned address costs no handshake.
 */
describe('HTTPS listeners', () => {
  let apache: ApacheHandle;
  let ca: TestCa;
  let proxy: TestProxy;
  let plainPort: number;
  let tlsPort: number;
  let redirectPort: number;
  let siteFiles: { certFile: string; keyFile: string };

  beforeAll(async () => {
    apache = await startApacheWithScripts({ files: { '.well-known/acme-challenge/token-1': 'acme-token-content\n', 'big.txt': 'x'.repeat(3 * 1024 * 1024) } });
    ca = await createTestCa();
    const site = await ca.issue(['site.test']);
    siteFiles = site;
    proxy = await startTestProxy(
      apache.url,
      [
        'block:',
        '  - path: /xmlrpc.php',
        // One request for it earns a ban: how the ban tests get a banned address.
        '  - path: /ban-me',
        '    strikes: 100',
        '  - path_prefix: /.well-known/',
        'escalation:',
        '  tarpit: 1s',
        '  prefix_after: 0',
        'timeouts:',
        '  tls_handshake: 1s',
        '  client_headers: 1s',
        'tls:',
        `  certificates: [{ cert: "${site.certFile}", key: "${site.keyFile}" }]`,
      ].join('\n'),
      {
        listenYaml: '["127.0.0.1:0", { address: "127.0.0.1:0", tls: true }, { address: "127.0.0.1:0", redirect_https: true }]',
      },
    );
    [plainPort, tlsPort, redirectPort] = proxy.running.addresses.map((address) => address.port) as [number, number, number];
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await ca?.remove();
  });

  /** curl against the TLS port as site.test, verifying the certificate against the test CA. */
  async function curl(path: string, ...args: string[]): Promise<{ status: number; version: string; body: string }> {
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--cacert', ca.caFile, '--resolve', `site.test:${tlsPort}:127.0.0.1`, ...args, '-w', '\n%{http_code} %{http_version}', `https://site.test:${tlsPort}${path}`]);
    const lines = stdout.trimEnd().split('\n');
    const [status, version] = (lines.pop() as string).split(' ');
    return { status: Number(status), version: version as string, body: lines.join('\n') };
  }

  it('serves HTTP/2 and HTTP/1.1 on one port, and tells Apache the request came over HTTPS', async () => {
    const h2 = await curl('/env.cgi', '--http2');
    expect(h2.version).toBe('2');
    expect(h2.status).toBe(200);
    expect(h2.body).toMatch(/^HTTP_X_FORWARDED_PROTO=https$/m);
    expect(h2.body).toMatch(new RegExp(`^HTTP_X_FORWARDED_PORT=${tlsPort}$`, 'm'));
    expect(h2.body).toMatch(new RegExp(`^HTTP_HOST=site\\.test:${tlsPort}$`, 'm'));
    const h1 = await curl('/env.cgi', '--http1.1');
    expect(h1.version).toBe('1.1');
    expect(h1.body).toMatch(/^HTTP_X_FORWARDED_PROTO=https$/m);
    const plain = await request(`http://127.0.0.1:${plainPort}`, { path: '/env.cgi', headers: { 'x-forwarded-proto': 'https' } });
    expect(plain.body).toMatch(/^HTTP_X_FORWARDED_PROTO=http$/m);
  });

  it('blocks over HTTP/2 as over HTTP/1.1: :path goes through the same normaliser, and Apache sees nothing', async () => {
    const before = (await apache.accessLog()).length;
    for (const [index, path] of ['/xmlrpc.php', '/%78mlrpc.php', '/a/../xmlrpc.php'].entries()) {
      // Each from an address of its own: the ban one blocked request earns here must not decide the next.
      const session = http2.connect(`https://site.test:${tlsPort}`, { ca: ca.ca, servername: 'site.test', host: '127.0.0.1', localAddress: `127.92.1.${index + 1}` } as http2.SecureClientSessionOptions);
      session.on('error', () => {});
      const status = await new Promise<number>((resolve) => {
        const stream = session.request({ ':method': 'POST', ':path': path });
        stream.on('response', (headers) => resolve(Number(headers[':status'])));
        stream.on('error', () => resolve(0));
        stream.on('close', () => resolve(0));
        stream.end();
      });
      session.destroy();
      expect(status, path).toBe(403);
    }
    expect((await apache.accessLog()).length).toBe(before);
  });

  it('refuses over HTTP/2 the methods HTTP/1.1 refuses (lower case, made up), so no rule keyed on GET or POST is passed with `get`', async () => {
    const before = (await apache.accessLog()).length;
    const session = http2.connect(`https://site.test:${tlsPort}`, { ca: ca.ca, servername: 'site.test', host: '127.0.0.1', localAddress: '127.92.2.1' } as http2.SecureClientSessionOptions);
    session.on('error', () => {});
    try {
      for (const method of ['get', 'Post', 'BREW']) {
        const status = await new Promise<number>((resolve) => {
          const stream = session.request({ ':method': method, ':path': '/echo.cgi' });
          stream.on('response', (headers) => resolve(Number(headers[':status'])));
          stream.on('error', () => resolve(0));
          stream.on('close', () => resolve(0));
          stream.resume();
          stream.end();
        });
        expect(status, method).toBe(501);
      }
    } finally {
      session.destroy();
    }
    // Anything forwarded would be logged within this.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await apache.accessLog()).length).toBe(before);
  });

  it('carries request bodies and large answers over HTTP/2 through buffering, byte for byte', async () => {
    const session = http2.connect(`https://site.test:${tlsPort}`, { ca: ca.ca, servername: 'site.test', host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    const exchange = (headers: http2.OutgoingHttpHeaders, body?: Buffer) =>
      new Promise<{ status: number; length: number; text: string }>((resolve, reject) => {
        const stream = session.request(headers);
        const chunks: Buffer[] = [];
        let status = 0;
        stream.on('response', (head) => (status = Number(head[':status'])));
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const all = Buffer.concat(chunks);
          resolve({ status, length: all.length, text: all.subarray(0, 200).toString('utf8') });
        });
        stream.on('error', reject);
        stream.end(body);
      });
    try {
      const big = await exchange({ ':path': '/big.txt' });
      expect(big).toMatchObject({ status: 200, length: 3 * 1024 * 1024 });
      const posted = await exchange({ ':method': 'POST', ':path': '/echo.cgi', 'content-type': 'application/octet-stream' }, Buffer.alloc(200_000, 7));
      expect(posted.status).toBe(200);
      expect(posted.text).toContain('method=POST length=200000');
    } finally {
      session.close();
    }
  });

  it('joins HTTP/2 cookie fields for Apache with "; " (RFC 9113 §8.2.3)', async () => {
    const session = http2.connect(`https://site.test:${tlsPort}`, { ca: ca.ca, servername: 'site.test', host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    try {
      const body = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/env.cgi', cookie: ['a=1', 'b=2'] });
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => (text += chunk));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      });
      expect(body).toMatch(/^HTTP_COOKIE=a=1; b=2$/m);
    } finally {
      session.close();
    }
  });

  it('closes a banned address\'s TCP connection before any TLS work (no ServerHello), after holding it for the tarpit', async () => {
    // 100 strikes from one blocked request on the plain port: banned at once.
    await request(`http://127.0.0.1:${plainPort}`, { path: '/ban-me', localAddress: '127.93.1.1' }).catch(() => {});
    expect(proxy.running.ledger.get('127.93.1.1', performance.now())).not.toBeNull();
    const outcome = await new Promise<{ secure: boolean; bytes: number; heldMs: number }>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: tlsPort, localAddress: '127.93.1.1' });
      let bytes = 0;
      let startedMs = 0;
      socket.on('connect', () => {
        startedMs = performance.now();
        // A real ClientHello would follow; none is needed to see that nothing answers.
        const client = tls.connect({ socket, servername: 'site.test', ca: ca.ca });
        client.on('secureConnect', () => resolve({ secure: true, bytes, heldMs: performance.now() - startedMs }));
        client.on('error', () => {});
      });
      socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
      socket.on('error', () => {});
      socket.on('close', () => resolve({ secure: false, bytes, heldMs: performance.now() - startedMs }));
    });
    expect(outcome.secure).toBe(false);
    expect(outcome.bytes).toBe(0);
    expect(outcome.heldMs).toBeGreaterThanOrEqual(900);
  });

  it('cuts a client that never finishes its handshake within timeouts.tls_handshake, and strikes it', async () => {
    const strikes = async () => Number(/^portcullis_strikes_total\{rule="client_timeout"\} (\d+)/m.exec(await (await fetch(`${proxy.adminUrl}/metrics`)).text())?.[1] ?? 0);
    const before = await strikes();
    const closedAfterMs = await new Promise<number>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: tlsPort, localAddress: '127.94.1.1' });
      const startedMs = performance.now();
      socket.resume();
      socket.on('error', () => {});
      // Bounded: Node's own default would hold it for 120 s.
      const timer = setTimeout(() => (socket.destroy(), resolve(Number.POSITIVE_INFINITY)), 8_000);
      socket.on('close', () => (clearTimeout(timer), resolve(performance.now() - startedMs)));
    });
    expect(closedAfterMs).toBeLessThan(3_000);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await strikes()).toBe(before + 1);
    const failures = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
    expect(Number(/^portcullis_tls_handshake_failures_total\{reason="timeout"\} (\d+)/m.exec(failures)?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('serves a renewed certificate to new connections after a reload (SIGHUP, portcullis reload), keeping open ones', async () => {
    const serialNow = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'site.test', ca: ca.ca }, () => {
          resolve(socket.getPeerX509Certificate()?.serialNumber ?? '');
          socket.destroy();
        });
        socket.on('error', reject);
      });
    const before = await serialNow();
    const open = http2.connect(`https://site.test:${tlsPort}`, { ca: ca.ca, servername: 'site.test', host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    await new Promise((resolve) => open.once('connect', resolve));
    // certbot renews in place: the same paths, a new certificate.
    const renewed = await ca.issue(['site.test'], 'site.test-renewed');
    await run('cp', [renewed.certFile, siteFiles.certFile]);
    await run('cp', [renewed.keyFile, siteFiles.keyFile]);
    expect((await proxy.running.reload('test')).ok).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await serialNow()).not.toBe(before);
    const status = await new Promise<number>((resolve) => {
      const stream = open.request({ ':path': '/index.html' });
      stream.on('response', (headers) => resolve(Number(headers[':status'])));
      stream.on('error', () => resolve(0));
      stream.end();
    });
    open.close();
    expect(status).toBe(200);
  });

  it('holds HTTP/1.1 over TLS to the plain port\'s header timeout (Node\'s own HTTP/2 fallback applies none)', async () => {
    const closedAfterMs = await new Promise<number>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'site.test', ca: ca.ca, ALPNProtocols: ['http/1.1'] }, () => {
        socket.write('GET / HTTP/1.1\r\nHost: site.test\r\nX-Slow: ');
      });
      const startedMs = performance.now();
      socket.resume();
      socket.on('error', () => {});
      const timer = setTimeout(() => (socket.destroy(), resolve(Number.POSITIVE_INFINITY)), 8_000);
      socket.on('close', () => (clearTimeout(timer), resolve(performance.now() - startedMs)));
    });
    // client_headers is 1 s here; Node checks once a second.
    expect(closedAfterMs).toBeLessThan(3_500);
  });

  it('redirects a plain listener to https:// with 308, but forwards ACME challenges to Apache, past blocks', async () => {
    const redirected = await rawRequest(redirectPort, 'GET /page?x=1 HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n');
    expect(redirected.status).toBe(308);
    expect(redirected.text).toMatch(/^location: https:\/\/site\.test\/page\?x=1$/im);
    const challenge = await request(`http://127.0.0.1:${redirectPort}`, { path: '/.well-known/acme-challenge/token-1', headers: { host: 'site.test' } });
    expect(challenge.status).toBe(200);
    expect(challenge.body).toBe('acme-token-content\n');
    // Only the challenge is exempt: the rest of /.well-known/ stays blocked, and a spelling that leaves the prefix too.
    expect((await request(`http://127.0.0.1:${redirectPort}`, { path: '/.well-known/other', headers: { host: 'site.test' } })).status).toBe(403);
    expect((await rawRequest(redirectPort, 'GET /.well-known/acme-challenge/../other HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n')).status).toBe(403);
  });
});

describe('HTTPS listeners and the upstream cap', () => {
  let apache: ApacheHandle;
  let ca: TestCa;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    ca = await createTestCa();
    const site = await ca.issue(['site.test']);
    proxy = await startTestProxy(apache.url, `concurrency:\n  upstream_max: 1\n  per_client_max: 1\n  queue_timeout: 300ms\ntls:\n  certificates: [{ cert: "${site.certFile}", key: "${site.keyFile}" }]\n`, {
      listenYaml: '[{ address: "127.0.0.1:0", tls: true }]',
    });
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await ca?.remove();
  });

  it('answers an HTTP/2 request that waited out the queue with a real 503, as over HTTP/1.1', async () => {
    const port = proxy.running.address.port;
    const session = http2.connect(`https://site.test:${port}`, { ca: ca.ca, servername: 'site.test', host: '127.0.0.1' } as http2.SecureClientSessionOptions);
    session.on('error', () => {});
    const ask = () =>
      new Promise<{ status: number; body: string }>((resolve) => {
        const stream = session.request({ ':path': '/slow.cgi?1' });
        let status = 0;
        let body = '';
        stream.setEncoding('utf8');
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.on('data', (chunk: string) => (body += chunk));
        stream.on('close', () => resolve({ status, body }));
      });
    try {
      const answers = await Promise.all([ask(), ask()]);
      const statuses = answers.map((answer) => answer.status).sort();
      expect(statuses).toEqual([200, 503]);
      expect(answers.find((answer) => answer.status === 503)?.body).toContain('Server busy');
    } finally {
      session.close();
    }
  });
});

