import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlsMetrics } from '../../src/metrics/tls-metrics.js';
import { CertificateStore } from '../../src/tls/certificate-store.js';
import type { ApacheHandle } from '../support/apache.js';
import { startApacheWithScripts } from '../support/apache-scripts.js';
import { capturingLogger } from '../support/captured-log.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { certbotFiles, installCertbotVersion, TestCertificateAuthority, type IssuedCertificate } from '../support/test-certificates.js';

const run = promisify(execFile);

/** The certificate store behind portcullis's own TLS listener, in front of a real Apache. */
describe('the certificate store behind the TLS listener', () => {
  let apache: ApacheHandle;
  let dir: string;
  let ca: TestCertificateAuthority;
  let a: IssuedCertificate;
  let c: IssuedCertificate;
  let store: CertificateStore;
  let proxy: TestProxy;
  let tlsPort: number;

  beforeAll(async () => {
    apache = await startApacheWithScripts();
    dir = await mkdtemp(join(tmpdir(), 'portcullis-tls-listener-'));
    ca = await TestCertificateAuthority.create(dir);
    a = await ca.issue('a', { dnsNames: ['a.test', '*.b.test'] });
    c = await ca.issue('c', { dnsNames: ['c.test'] });
    await installCertbotVersion(join(dir, 'letsencrypt'), 'a.test', 1, await certbotFiles(a));
    const tls = `tls:\n  certbot_live: "${join(dir, 'letsencrypt', 'live')}"\n`;
    ({ store } = await CertificateStore.open({ config: { certificates: [], certbot_live: join(dir, 'letsencrypt', 'live') }, logger: capturingLogger(() => undefined), metrics: new TlsMetrics(new Registry()) }));
    proxy = await startTestProxy(apache.url, tls, {
      listenYaml: '["127.0.0.1:0", { address: "127.0.0.1:0", tls: true }]',
      tls: { secure: store.serverOptions(), handshakeTimeoutMs: 5_000, attach: (server) => store.attach(server) },
    });
    tlsPort = proxy.running.addresses[1]!.port;
  });

  afterAll(async () => {
    store?.close();
    await proxy?.close();
    await apache?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** curl with SNI `name` over HTTP/2; the served certificate's subject, the HTTP version and status. */
  async function curl(name: string): Promise<{ subject: string; answer: string }> {
    const { stdout, stderr } = await run('curl', ['-sS', '-v', '--http2', '--max-time', '10', '--cacert', ca.caFile, '--resolve', `${name}:${tlsPort}:127.0.0.1`, '-o', '/dev/null', '-w', '%{http_version} %{http_code}', `https://${name}:${tlsPort}/`]);
    return { subject: /^\*\s+subject: (.*)$/m.exec(stderr)?.[1]?.trim() ?? stderr, answer: stdout };
  }

  it('serves each name its certificate over HTTP/2, and a new certbot folder after a reload', async () => {
    expect(await curl('a.test')).toEqual({ subject: 'CN=a.test', answer: '2 200' });
    expect(await curl('www.b.test')).toEqual({ subject: 'CN=a.test', answer: '2 200' });
    await installCertbotVersion(join(dir, 'letsencrypt'), 'c.test', 1, await certbotFiles(c));
    expect((await store.reload('portcullis reload')).changed).toEqual(['c.test']);
    expect(await curl('c.test')).toEqual({ subject: 'CN=c.test', answer: '2 200' });
  });
});
