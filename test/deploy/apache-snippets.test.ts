import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http2 from 'node:http2';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy } from '../../src/config/policy-loader.js';
import { APACHE_BIN, APACHE_MODULES_DIR, type ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { createTestCa, type TestCa } from '../support/test-ca.js';

const run = promisify(execFile);
const APACHE_DIR = join(import.meta.dirname, '../../deploy/apache');
const SNIPPET = join(APACHE_DIR, 'portcullis.conf');
const PORTS = join(APACHE_DIR, 'ports.conf');

/** What a PHP page would see of the request: the CGI environment Apache gives it. */
const HTTPS_CGI = `#!/bin/sh
printf 'Content-Type: text/plain\\r\\n\\r\\n'
printf 'HTTPS=%s\\n' "\${HTTPS-unset}"
printf 'REMOTE_ADDR=%s\\n' "$REMOTE_ADDR"
`;

/** Debian's apache2.conf defines these with %h before conf-enabled/ is read; the snippet must win over them. */
const DEBIAN_LOG_FORMATS = [
  'LogFormat "%v:%p %h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" vhost_combined',
  'LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined',
].join('\n');

/**
 * deploy/apache/ as shipped, in a real Apache behind a real portcullis with a
 * plain and a TLS listener: Apache's own combined log names each client by
 * the address it connected to portcullis from (never portcullis's 127.0.0.1),
 * and a CGI script, standing in for PHP, sees HTTPS=on exactly for requests
 * that came in over TLS.
 */
describe('deploy/apache behind portcullis', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;
  let ca: TestCa;
  let plainPort: number;
  let tlsPort: number;
  let combinedLog: string;

  beforeAll(async () => {
    apache = await startApacheWithScripts({
      modules: ['remoteip', 'setenvif'],
      files: { 'https.cgi': HTTPS_CGI },
      // As in Debian: apache2.conf's formats, then conf-enabled/portcullis.conf, then a site's CustomLog.
      extraConfig: [DEBIAN_LOG_FORMATS, `Include "${SNIPPET}"`, 'CustomLog "${SERVER_DIR}/logs/combined.log" combined'].join('\n'),
    });
    await chmod(join(apache.root, 'https.cgi'), 0o755);
    combinedLog = join(apache.serverDir, 'logs', 'combined.log');
    ca = await createTestCa();
    const site = await ca.issue(['site.test']);
    proxy = await startTestProxy(apache.url, `tls:\n  certificates: [{ cert: "${site.certFile}", key: "${site.keyFile}" }]\n`, {
      listenYaml: '["127.0.0.1:0", { address: "127.0.0.1:0", tls: true }]',
    });
    [plainPort, tlsPort] = proxy.running.addresses.map((address) => address.port) as [number, number];
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
    await ca?.remove();
  });

  function httpsGet(path: string, localAddress: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port: tlsPort, path, servername: 'site.test', headers: { host: 'site.test' }, ca: ca.ca, localAddress, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}: ${body}`))));
      });
      req.on('error', reject);
    });
  }

  function http2Get(path: string, localAddress: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const session = http2.connect(`https://site.test:${tlsPort}`, { ca: ca.ca, servername: 'site.test', host: '127.0.0.1', localAddress } as http2.SecureClientSessionOptions);
      session.on('error', reject);
      const stream = session.request({ ':path': path });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => {
        session.close();
        resolve(body);
      });
      stream.on('error', reject);
    });
  }

  /** The combined log's client field (first) for the request line naming `target`, once Apache has written it. */
  async function loggedClient(target: string): Promise<string> {
    for (let attempt = 0; attempt < 500; attempt++) {
      const text = await readFile(combinedLog, 'utf8').catch(() => '');
      const line = text.split('\n').find((entry) => entry.includes(`"GET ${target} HTTP/`));
      if (line !== undefined) return line.split(' ')[0] as string;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`no combined log line for ${target}:\n${await readFile(combinedLog, 'utf8').catch(() => '')}`);
  }

  it('over plain HTTP: Apache logs the client, and the script does not see HTTPS', async () => {
    const response = await request(`http://127.0.0.1:${plainPort}`, { path: '/https.cgi?plain', localAddress: '127.0.0.5' });
    expect(response.status).toBe(200);
    expect(response.body).toContain('HTTPS=unset\n');
    expect(response.body).toContain('REMOTE_ADDR=127.0.0.5\n');
    expect(await loggedClient('/https.cgi?plain')).toBe('127.0.0.5');
  });

  it('a plain-HTTP client claiming X-Forwarded-Proto: https (or another address) changes nothing', async () => {
    const response = await request(`http://127.0.0.1:${plainPort}`, {
      path: '/https.cgi?spoofed',
      localAddress: '127.0.0.8',
      headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-For': '198.51.100.7' },
    });
    expect(response.body).toContain('HTTPS=unset\n');
    expect(response.body).toContain('REMOTE_ADDR=127.0.0.8\n');
    expect(await loggedClient('/https.cgi?spoofed')).toBe('127.0.0.8');
  });

  it('over TLS with HTTP/1.1: Apache logs the client, and the script sees HTTPS=on', async () => {
    const body = await httpsGet('/https.cgi?tls', '127.0.0.6');
    expect(body).toContain('HTTPS=on\n');
    expect(body).toContain('REMOTE_ADDR=127.0.0.6\n');
    expect(await loggedClient('/https.cgi?tls')).toBe('127.0.0.6');
  });

  it('over TLS with HTTP/2: the same', async () => {
    const body = await http2Get('/https.cgi?h2', '127.0.0.7');
    expect(body).toContain('HTTPS=on\n');
    expect(body).toContain('REMOTE_ADDR=127.0.0.7\n');
    expect(await loggedClient('/https.cgi?h2')).toBe('127.0.0.7');
  });
});

/**
 * The README's advice for a CDN in front: portcullis believes the CDN's
 * X-Forwarded-For (clients.trusted_proxies) and appends the CDN's address, so
 * Apache must believe the CDN too (RemoteIPTrustedProxy next to the snippet),
 * or it logs the CDN.
 */
describe('deploy/apache behind portcullis behind a CDN', () => {
  const CDN = '127.0.0.9';
  const VISITOR = '203.0.113.7';

  async function loggedBehindCdn(apacheExtra: string): Promise<string> {
    const apache = await startApacheWithScripts({
      modules: ['remoteip', 'setenvif'],
      extraConfig: [DEBIAN_LOG_FORMATS, `Include "${SNIPPET}"`, apacheExtra, 'CustomLog "${SERVER_DIR}/logs/combined.log" combined'].join('\n'),
    });
    let proxy: TestProxy | undefined;
    try {
      proxy = await startTestProxy(apache.url, `clients:\n  trusted_proxies: ["${CDN}/32"]\n`);
      const response = await request(proxy.url, { path: '/index.html?cdn', localAddress: CDN, headers: { 'X-Forwarded-For': VISITOR } });
      expect(response.status).toBe(200);
      const log = join(apache.serverDir, 'logs', 'combined.log');
      for (let attempt = 0; attempt < 500; attempt++) {
        const line = (await readFile(log, 'utf8').catch(() => '')).split('\n').find((entry) => entry.includes('"GET /index.html?cdn HTTP/'));
        if (line !== undefined) return line.split(' ')[0] as string;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error('no combined log line');
    } finally {
      await proxy?.close();
      await apache.stop();
    }
  }

  it('logs the visitor once the CDN is a RemoteIPTrustedProxy, and the CDN without', async () => {
    expect(await loggedBehindCdn(`RemoteIPTrustedProxy ${CDN}`)).toBe(VISITOR);
    expect(await loggedBehindCdn('')).toBe(CDN);
  });
});

/**
 * ports.conf cannot be run as is next to other tests (port 8080 may be
 * taken): Apache's own config test reads it with the snippet, and its one
 * Listen is loopback on the shipped policy's upstream port.
 */
describe('deploy/apache/ports.conf', () => {
  it('listens on loopback only, where the shipped policy sends requests', async () => {
    const text = await readFile(PORTS, 'utf8');
    const listens = text.split('\n').filter((line) => /^\s*Listen\b/i.test(line));
    expect(listens).toEqual(['Listen 127.0.0.1:8080']);
    const shipped = parsePolicy(await readFile(join(import.meta.dirname, '../../config/portcullis.yaml'), 'utf8'), 'portcullis.yaml');
    expect(shipped.upstream).toBe('http://127.0.0.1:8080');
  });

  it('passes apache2 -t together with portcullis.conf', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-apache-t-'));
    try {
      const conf = join(dir, 'httpd.conf');
      await writeFile(
        conf,
        [
          `ServerRoot "${dir}"`,
          'ServerName 127.0.0.1',
          `DefaultRuntimeDir "${dir}"`,
          `PidFile "${join(dir, 'httpd.pid')}"`,
          `ErrorLog "${join(dir, 'error.log')}"`,
          ...['mpm_event', 'authz_core', 'remoteip', 'setenvif'].map((m) => `LoadModule ${m}_module ${APACHE_MODULES_DIR}/mod_${m}.so`),
          `Include "${PORTS}"`,
          `Include "${SNIPPET}"`,
          '',
        ].join('\n'),
      );
      const { stderr } = await run(APACHE_BIN, ['-t', '-f', conf]);
      expect(stderr.trim()).toBe('Syntax OK');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
