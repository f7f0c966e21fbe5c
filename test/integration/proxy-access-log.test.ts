import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAccessLogLine } from '../../src/replay/access-log-line.js';
import { DEFAULT_DOCROOT_FILES, type ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { rawRequest, request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

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

describe('access_log_refused: the requests portcullis answered itself, in the same log', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;
  let dir: string;
  let path: string;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    dir = await mkdtemp(join(tmpdir(), 'portcullis-refused-'));
    path = join(dir, 'access.log');
    proxy = await startTestProxy(
      apache.url,
      [
        `access_log: "${path}"`,
        'access_log_refused: true',
        'block:\n  - path: /xmlrpc.php',
        'limits:\n  - { name: pages, methods: [GET], paths: ["/limited/*"], per_ip: { rate: 1/m, burst: 1 } }',
        'concurrency: { upstream_max: 1, per_client_max: 1, queue_max: 1, per_client_queue_max: 1, queue_timeout: 300ms }',
        'escalation: { strikes: 3, window: 60s, tarpit: 0s }',
        'request: { max_body: 1KiB }',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Lines written so far, waiting (bounded) until there are `n`. */
  async function lines(n: number): Promise<string[]> {
    let found: string[] = [];
    for (let i = 0; i < 150 && found.length < n; i++) {
      found = (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
      if (found.length < n) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return found;
  }

  it('writes each refusal as the combined line with portcullis\'s status and one trailing "portcullis:KIND:DETAIL", and forwarded lines unchanged', async () => {
    // Each client in its own /24, so no prefix ban mixes them up.
    expect((await request(proxy.url, { path: '/index.html', localAddress: '127.96.1.1' })).status).toBe(200);
    expect((await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: 'x', localAddress: '127.96.2.1' })).status).toBe(403);
    expect((await request(proxy.url, { path: '/limited/a', localAddress: '127.96.3.1' })).status).toBe(404);
    expect((await request(proxy.url, { path: '/limited/a', localAddress: '127.96.3.1' })).status).toBe(429);
    expect((await rawRequest(proxy.port, 'GET /index.html HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 5_000, '127.96.4.1')).status).toBe(400);
    // Three strikes ban; the fourth request meets the ban. The ban closes the client's connections,
    // which can cut the third one's answer: its line is still written, with the status meant.
    for (let i = 0; i < 3; i++) {
      const status = await request(proxy.url, { method: 'POST', path: '/xmlrpc.php', body: 'x', localAddress: '127.96.5.1' }).then((response) => response.status, () => 'cut');
      expect(i < 2 ? [403] : [403, 'cut']).toContain(status);
    }
    expect((await request(proxy.url, { path: '/index.html', localAddress: '127.96.5.1' })).status).toBe(403);
    // One slot: a slow request holds it, the next waits out its 300 ms in the queue.
    const slow = request(proxy.url, { path: '/slow.cgi?1', localAddress: '127.96.6.1' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await request(proxy.url, { path: '/index.html', localAddress: '127.96.7.1' })).status).toBe(503);
    expect((await slow).status).toBe(200);
    expect((await request(proxy.url, { method: 'POST', path: '/echo.cgi', headers: { 'content-length': '2000' }, body: 'y'.repeat(2000), localAddress: '127.96.8.1' })).status).toBe(413);
    // An Upgrade is refused on the raw socket, with no body.
    expect((await rawRequest(proxy.port, 'GET /xmlrpc.php HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n', 5_000, '127.96.9.1')).status).toBe(403);

    const written = await lines(13);
    expect(written).toHaveLength(13);
    const byClient = (ip: string) => written.filter((line) => line.startsWith(`${ip} `));
    /** The trailing field of a line, or null for a line that is exactly combined. */
    const field = (line: string | undefined) => (COMBINED.test(line ?? '') ? null : (/ "(portcullis:[^"]*)"$/.exec(line ?? '')?.[1] ?? 'neither'));
    expect(byClient('127.96.1.1').map(field)).toEqual([null]);
    expect(byClient('127.96.2.1').map(field)).toEqual(['portcullis:block:/xmlrpc.php']);
    expect(byClient('127.96.3.1').map(field)).toEqual([null, 'portcullis:limit:pages']);
    expect(byClient('127.96.4.1').map(field)).toEqual(['portcullis:reject:more than one Host header']);
    expect(byClient('127.96.5.1').map(field)).toEqual(['portcullis:block:/xmlrpc.php', 'portcullis:block:/xmlrpc.php', 'portcullis:block:/xmlrpc.php', 'portcullis:ban:127.96.5.1']);
    expect(byClient('127.96.6.1').map(field)).toEqual([null]);
    expect(byClient('127.96.7.1').map(field)).toEqual(['portcullis:busy:queue_timeout']);
    expect(byClient('127.96.8.1').map(field)).toEqual(['portcullis:body:too_large']);
    expect(byClient('127.96.9.1').map(field)).toEqual(['portcullis:block:/xmlrpc.php']);
    expect(byClient('127.96.9.1')[0]).toContain('"GET /xmlrpc.php HTTP/1.1" 403 - ');
    // The nine fields before it are a combined line with portcullis's own status and body bytes.
    const refused = byClient('127.96.3.1')[1] as string;
    const fields = new RegExp(COMBINED.source.slice(0, -1)).exec(refused);
    expect(fields?.slice(3, 6)).toEqual(['GET /limited/a HTTP/1.1', '429', String(Buffer.byteLength('Too many requests\n'))]);
    // Replay reads every one of them back, statuses as sent.
    expect(written.map((line) => parseAccessLogLine(line)?.status)).toEqual(written.map((line) => Number(/" (\d{3}) /.exec(line)?.[1])));
    expect(byClient('127.96.5.1').map((line) => parseAccessLogLine(line)?.status)).toEqual([403, 403, 403, 403]);
  });
});

describe('access_log_refused over HTTP/2 and on a redirect_https port', () => {
  let apache: ApacheHandle;
  let ca: TestCa;
  let proxy: TestProxy;
  let dir: string;
  let path: string;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    ca = await createTestCa();
    const certificate = await ca.issue(['site.test']);
    dir = await mkdtemp(join(tmpdir(), 'portcullis-refused-h2-'));
    path = join(dir, 'access.log');
    proxy = await startTestProxy(
      apache.url,
      `access_log: "${path}"\naccess_log_refused: true\nblock:\n  - path: /xmlrpc.php\ntls:\n  certificates: [{ cert: "${certificate.certFile}", key: "${certificate.keyFile}" }]\n`,
      { listenYaml: '[{ address: "127.0.0.1:0", tls: true }, { address: "127.0.0.1:0", redirect_https: true }]' },
    );
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await ca?.remove();
    await rm(dir, { recursive: true, force: true });
  });

  /** One HTTP/2 request on its own session; resolves with its status. */
  function exchange(headers: http2.OutgoingHttpHeaders): Promise<number> {
    const session = http2.connect(`https://site.test:${proxy.port}`, { ca: ca.ca, servername: 'site.test', host: '127.0.0.1' } as http2.SecureClientSessionOptions);
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

  it('logs an HTTP/2 refusal as HTTP/2.0 with its field, and the redirect to HTTPS', async () => {
    expect(await exchange({ ':method': 'GET', ':path': '/index.html' })).toBe(200);
    expect(await exchange({ ':method': 'POST', ':path': '/xmlrpc.php' })).toBe(403);
    const plainPort = proxy.running.addresses[1]?.port as number;
    expect((await request(`http://127.0.0.1:${plainPort}`, { path: '/index.html', headers: { host: 'site.test' } })).status).toBe(308);

    let written: string[] = [];
    for (let i = 0; i < 150 && written.length < 3; i++) {
      written = (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '');
      if (written.length < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(written).toHaveLength(3);
    expect(written[0]).toMatch(COMBINED);
    expect(written[0]).toContain(`"GET /index.html HTTP/2.0" 200 ${Buffer.byteLength(DEFAULT_DOCROOT_FILES['index.html'] as string)} `);
    // "Forbidden\n": HTTP/2's end(body) goes through write(), and is counted once.
    expect(written[1]).toMatch(/"POST \/xmlrpc\.php HTTP\/2\.0" 403 10 "-" "-" "portcullis:block:\/xmlrpc\.php"$/);
    expect(written[2]).toMatch(/"GET \/index\.html HTTP\/1\.1" 308 \d+ "-" "-" "portcullis:redirect:https"$/);
    expect(written.map((line) => parseAccessLogLine(line)?.status)).toEqual([200, 403, 308]);
  });
});
