import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualTimers } from '../../src/core/timers.js';
import { TlsMetrics } from '../../src/metrics/tls-metrics.js';
import { CertificateStore } from '../../src/tls/certificate-store.js';
import { TICKET_KEY_ROTATION_MS } from '../../src/tls/ticket-key-rotation.js';
import { capturingLogger, type LogEntry } from '../support/captured-log.js';
import { certbotFiles, installCertbotVersion, TestCertificateAuthority, type IssuedCertificate } from '../support/test-certificates.js';

const run = promisify(execFile);

let dir: string;
let ca: TestCertificateAuthority;
let caPem: Buffer;
let a: IssuedCertificate;
let c: IssuedCertificate;
let cRenewed: IssuedCertificate;
let expired: IssuedCertificate;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-tls-'));
  ca = await TestCertificateAuthority.create(dir);
  caPem = await ca.caPem();
  a = await ca.issue('a', { dnsNames: ['a.test', '*.b.test'] });
  c = await ca.issue('c', { dnsNames: ['c.test'] });
  cRenewed = await ca.issue('c', { dnsNames: ['c.test'], days: 60 });
  expired = await ca.issue('expired', { dnsNames: ['c.test'], notBefore: '20200101000000Z', notAfter: '20200201000000Z' });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A TLS server as the listener builds one from the store: an HTTP/1.1 echo of the SNI name, enough for curl and raw requests. */
async function startServer(store: CertificateStore): Promise<{ server: tls.Server; port: number; close(): Promise<void> }> {
  const server = tls.createServer(store.serverOptions(), (socket) => {
    socket.on('error', () => undefined);
    socket.on('data', () => {
      const body = `served ${store.nameFor(socket.servername || undefined)}\n`;
      socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: keep-alive\r\n\r\n${body}`);
    });
  });
  store.attach(server);
  const open = new Set<tls.TLSSocket>();
  server.on('secureConnection', (socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Connected {
  readonly socket: tls.TLSSocket;
  readonly fingerprint256: string;
}

/** Connects with `servername` (none: no SNI, as for an IP address) and the test CA; resolves once the handshake is done. */
function connect(port: number, servername: string | undefined, options: tls.ConnectionOptions = {}): Promise<Connected> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: caPem,
      ...(servername === undefined ? { checkServerIdentity: () => undefined } : { servername }),
      ...options,
    });
    socket.once('secureConnect', () => resolve({ socket, fingerprint256: socket.getPeerCertificate().fingerprint256 }));
    socket.once('error', reject);
  });
}

/** Fingerprint of the certificate a new connection for `servername` gets; the connection is closed. */
async function servedFingerprint(port: number, servername: string | undefined): Promise<string> {
  const { socket, fingerprint256 } = await connect(port, servername);
  socket.destroy();
  return fingerprint256;
}

/** Sends one HTTP/1.1 request on an open TLS connection and resolves with the answer's body. */
function ask(socket: tls.TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString('utf8').split('\r\n\r\n')[1] ?? ''));
    socket.once('error', reject);
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  });
}

/** Polls `check` every 25 ms until it is true or `timeoutMs` passes; resolves with the time it took, or null. */
async function within(timeoutMs: number, check: () => Promise<boolean>): Promise<number | null> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await check()) return Date.now() - start;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return null;
}

/** curl over HTTPS with SNI picked by --resolve (no DNS), or to the bare address (no SNI); resolves with the served subject and body. */
async function curl(port: number, name: string | undefined): Promise<{ subject: string; body: string }> {
  const url = name === undefined ? `https://127.0.0.1:${port}/` : `https://${name}:${port}/`;
  const args = ['-sS', '-v', '--http1.1', '--cacert', ca.caFile, '--max-time', '10', ...(name === undefined ? ['--insecure'] : ['--resolve', `${name}:${port}:127.0.0.1`]), url];
  const { stdout, stderr } = await run('curl', args, { timeout: 20_000 });
  const subject = /^\*\s+subject: (.*)$/m.exec(stderr)?.[1] ?? `(no subject in curl's output: ${stderr})`;
  return { subject: subject.trim(), body: stdout };
}

describe('TLS certificates on a real TLS server', () => {
  let root: string;
  let store: CertificateStore;
  let port: number;
  let closeServer: () => Promise<void>;
  const logs: LogEntry[] = [];
  const registry = new Registry();

  beforeAll(async () => {
    root = join(dir, 'letsencrypt');
    await installCertbotVersion(root, 'a.test', 1, await certbotFiles(a));
    await installCertbotVersion(root, 'c.test', 1, await certbotFiles(c));
    await writeFile(join(root, 'live', 'README'), 'certbot README\n');
    ({ store } = await CertificateStore.open({
      config: { certificates: [], certbot_live: join(root, 'live'), default: 'c.test' },
      logger: capturingLogger((entry) => logs.push(entry)),
      metrics: new TlsMetrics(registry),
    }));
    store.watch();
    ({ port, close: closeServer } = await startServer(store));
  });

  afterAll(async () => {
    store?.close();
    await closeServer?.();
  });

  it('serves each name its certificate by SNI, wildcards one label deep, and tls.default without SNI (Node client)', async () => {
    expect(await servedFingerprint(port, 'a.test')).toBe(a.fingerprint256);
    expect(await servedFingerprint(port, 'www.b.test')).toBe(a.fingerprint256);
    expect(await servedFingerprint(port, 'c.test')).toBe(c.fingerprint256);
    expect(await servedFingerprint(port, undefined)).toBe(c.fingerprint256);
    // A name no certificate covers gets the default too (the client then refuses it, as it should).
    const unknown = await connect(port, 'unknown.test', { checkServerIdentity: () => undefined });
    expect(unknown.fingerprint256).toBe(c.fingerprint256);
    unknown.socket.destroy();
    expect(await servedFingerprint(port, 'x.y.b.test').catch((error: Error) => error.message)).toMatch(/does not match certificate's altnames/);
  });

  it('serves the same to curl, with --resolve for SNI and without it to the bare address', async () => {
    expect(await curl(port, 'a.test')).toEqual({ subject: 'CN=a.test', body: 'served a.test\n' });
    expect(await curl(port, 'x.b.test')).toEqual({ subject: 'CN=a.test', body: 'served a.test\n' });
    expect(await curl(port, 'c.test')).toEqual({ subject: 'CN=c.test', body: 'served c.test\n' });
    expect(await curl(port, undefined)).toEqual({ subject: 'CN=c.test', body: 'served c.test\n' });
  });

  it('speaks TLS 1.2 and 1.3 only, offers h2 then http/1.1', async () => {
    const old = await connect(port, 'a.test', { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }).then(
      (connected) => (connected.socket.destroy(), 'accepted'),
      (error: NodeJS.ErrnoException) => error.code ?? error.message,
    );
    expect(old).not.toBe('accepted');
    const tls12 = await connect(port, 'a.test', { maxVersion: 'TLSv1.2' });
    expect(tls12.socket.getProtocol()).toBe('TLSv1.2');
    expect(tls12.socket.getCipher().name).toMatch(/^ECDHE-ECDSA-(AES128-GCM-SHA256|AES256-GCM-SHA384|CHACHA20-POLY1305)$/);
    tls12.socket.destroy();
    const h2 = await connect(port, 'a.test', { ALPNProtocols: ['h2', 'http/1.1'] });
    expect(h2.socket.getProtocol()).toBe('TLSv1.3');
    expect(h2.socket.alpnProtocol).toBe('h2');
    h2.socket.destroy();
    const h1 = await connect(port, 'a.test', { ALPNProtocols: ['http/1.1'] });
    expect(h1.socket.alpnProtocol).toBe('http/1.1');
    h1.socket.destroy();
  });

  it('serves a certbot renewal (symlinks swapped in live/NAME/) to new connections within a second; an open connection keeps working', async () => {
    const open = await connect(port, 'c.test');
    expect(await ask(open.socket)).toBe('served c.test\n');
    await installCertbotVersion(root, 'c.test', 2, await certbotFiles(cRenewed));
    const tookMs = await within(3_000, async () => (await servedFingerprint(port, 'c.test')) === cRenewed.fingerprint256);
    expect(tookMs, 'the renewed certificate was never served').not.toBeNull();
    expect(tookMs).toBeLessThan(1_200);
    // Clients without SNI get the renewal too: the server's own context followed tls.default.
    expect(await servedFingerprint(port, undefined)).toBe(cRenewed.fingerprint256);
    expect(await servedFingerprint(port, 'a.test')).toBe(a.fingerprint256);
    // The connection opened before still answers, on the certificate it began with.
    expect(await ask(open.socket)).toBe('served c.test\n');
    expect(open.socket.getPeerCertificate().fingerprint256).toBe(c.fingerprint256);
    open.socket.destroy();
    const metric = await registry.getSingleMetric('portcullis_tls_certificate_expiry_timestamp_seconds')?.get();
    const cExpiry = metric?.values.find((value) => value.labels['name'] === 'c.test')?.value;
    expect(cExpiry).toBe(Math.floor(store.certificates.find((certificate) => certificate.name === 'c.test')!.notAfterMs / 1000));
    expect(logs.some((entry) => entry['msg'] === 'TLS certificates reloaded' && JSON.stringify(entry['changed']) === '["c.test"]')).toBe(true);
  });

  it('keeps the served certificate through broken renewals (garbage, a key that does not match, an expired one), logging and counting each', async () => {
    const rejected = async (): Promise<number> => {
      const metric = await registry.getSingleMetric('portcullis_tls_certificate_reload_failures_total')?.get();
      return (metric?.values ?? []).reduce((sum, value) => sum + value.value, 0);
    };
    const broken: [string, { fullchain: Buffer; key: Buffer }][] = [
      ['invalid_certificate', { fullchain: Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'), key: await readFile(cRenewed.keyFile) }],
      ['key_mismatch', { fullchain: await readFile(cRenewed.fullchainFile), key: await readFile(a.keyFile) }],
      ['expired', await certbotFiles(expired)],
    ];
    let version = 10;
    for (const [reason, files] of broken) {
      const before = await rejected();
      await installCertbotVersion(root, 'c.test', ++version, files);
      expect(await within(3_000, async () => (await rejected()) > before), `${reason} was never counted`).not.toBeNull();
      expect(await servedFingerprint(port, 'c.test')).toBe(cRenewed.fingerprint256);
      const line = logs.findLast((entry) => entry['level'] === 50);
      expect(line?.['reason']).toBe(reason);
      const file = join(root, 'live', 'c.test', reason === 'key_mismatch' ? 'privkey.pem' : 'fullchain.pem');
      expect(line?.['file']).toBe(file);
      expect(String(line?.['msg'])).toContain(`the previous certificate of c.test (valid until `);
      expect(String(line?.['msg'])).toContain(`${file}: `);
    }
    const metric = await registry.getSingleMetric('portcullis_tls_certificate_reload_failures_total')?.get();
    const counted = Object.fromEntries((metric?.values ?? []).filter((value) => value.value > 0).map((value) => [value.labels['reason'], value.value]));
    expect(counted).toEqual({ invalid_certificate: 1, key_mismatch: 1, expired: 1 });
  });

  it('reloads on demand (SIGHUP, portcullis reload) with nothing changed: nothing replaced', async () => {
    const result = await store.reload('SIGHUP');
    expect(result.served).toEqual(['a.test', 'c.test']);
    expect(result.changed).toEqual([]);
    expect(result.problems.map((problem) => problem.reason)).toEqual(['expired']);
  });
});

describe('session resumption', () => {
  /** Connects (resuming `previous` if given), asks once, and returns whether it resumed and the first new ticket it got, if any. */
  function session(port: number, servername: string, previous?: Buffer): Promise<{ ticket: Buffer | undefined; reused: boolean }> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: caPem, ...(previous ? { session: previous } : {}) });
      const tickets: Buffer[] = [];
      let reused = false;
      socket.on('session', (ticket: Buffer) => tickets.push(ticket));
      socket.once('secureConnect', () => {
        reused = socket.isSessionReused();
        socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      // TLS 1.3 tickets come after the handshake, before the answer is read.
      socket.once('data', () => {
        socket.destroy();
        resolve({ ticket: tickets[0], reused });
      });
      socket.once('error', reject);
    });
  }

  it('resumes with a ticket across SNI-picked certificates until the ticket key rotates', async () => {
    const timers = new ManualTimers();
    const { store } = await CertificateStore.open({
      config: { certificates: [{ cert: a.fullchainFile, key: a.keyFile }, { cert: c.fullchainFile, key: c.keyFile }] },
      logger: capturingLogger(() => undefined),
      metrics: new TlsMetrics(new Registry()),
      timers,
    });
    const { port, close } = await startServer(store);
    try {
      const first = await session(port, 'c.test');
      expect(first.reused).toBe(false);
      expect(first.ticket).toBeDefined();
      expect((await session(port, 'c.test', first.ticket)).reused).toBe(true);
      timers.advance(TICKET_KEY_ROTATION_MS);
      // Node holds one ticket key per server: a ticket of the previous key means a full handshake.
      const afterRotation = await session(port, 'c.test', first.ticket);
      expect(afterRotation.reused).toBe(false);
      expect((await session(port, 'c.test', afterRotation.ticket)).reused).toBe(true);
    } finally {
      store.close();
      await close();
    }
  });
});
