import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPortcullis, type RunningPortcullis } from '../../src/app/start-portcullis.js';
import { parsePolicy } from '../../src/config/policy-loader.js';
import { APACHE_BIN } from '../support/apache.js';
import { startLayoutApache, writeApacheLayout, type ApacheLayout, type LayoutApache } from '../support/apache-layout.js';
import { capturingLogger } from '../support/captured-log.js';
import { runCli } from '../support/cli.js';
import { applyApacheStep, planStep } from '../support/init-plan.js';

interface Answer {
  status: number;
  location?: string;
  body: string;
  /** The certificate's subjectAltName, over TLS. */
  certificateNames?: string;
}

/**
 * Issue 15, item 4: certbot's :80 redirect vhost and :443 content vhost,
 * mapped by `portcullis init`, serve as they did once the plan is applied:
 * the policy init wrote runs (its listeners moved to port 0), the plan's
 * Apache step is run on a certbot-shaped tree, and that Apache runs on the
 * loopback port init moved it to. Plain HTTP is redirected by portcullis
 * (ACME challenges reach Apache's docroot), HTTPS is served by each site's
 * vhost with its own certificate, xmlrpc.php as --allow-xmlrpc said.
 */
describe('portcullis init, applied: the sites behind portcullis', () => {
  let layout: ApacheLayout;
  let apache: LayoutApache | undefined;
  let proxy: RunningPortcullis | undefined;
  let work: string;
  let ca: Buffer;
  let plainPort: number;
  let tlsPort: number;

  beforeAll(async () => {
    layout = await writeApacheLayout([
      { file: 'blog', serverName: 'blog.example.org', aliases: ['www.blog.example.org'], https: true },
      { file: 'shop', serverName: 'shop.example.org', aliases: ['*.shop.example.org'], https: true },
    ]);
    ca = await readFile(layout.caFile);
    const challenges = join(layout.docroot('blog'), '.well-known', 'acme-challenge');
    await mkdir(challenges, { recursive: true, mode: 0o755 });
    await writeFile(join(challenges, 'token-1'), 'acme-token-1\n', { mode: 0o644 });
    work = await mkdtemp(join(tmpdir(), 'portcullis-init-e2e-'));
    const apachePort = await freePort();
    const out = join(work, 'out');
    const init = await runCli(['init', '--out', out, '--apachectl', APACHE_BIN, '--apache-config', layout.configFile, '--certbot-live', layout.certbotLive, '--cert-dir', layout.certbotLive, '--apache-port', String(apachePort), '--allow-xmlrpc', 'blog.example.org']);
    expect(init.stderr).toBe('');
    await applyApacheStep(layout, planStep(init.stdout, 4));
    apache = await startLayoutApache(layout, apachePort);

    // The written policy as it is, but for the addresses a test can bind and a state directory of its own.
    const written = await readFile(join(out, 'portcullis.yaml'), 'utf8');
    const policy = written
      .replace('"0.0.0.0:80"', '"127.0.0.1:0"')
      .replace('"0.0.0.0:443"', '"127.0.0.1:0"')
      .replace(/^state_dir: .*$/m, `state_dir: "${join(work, 'state')}"`)
      .replace(/^ {2}listen: "127\.0\.0\.1:9181".*$/m, '  listen: "127.0.0.1:0"');
    expect(policy.match(/127\.0\.0\.1:0/g)).toHaveLength(3);
    const policyFile = join(work, 'policy.yaml');
    await writeFile(policyFile, policy);
    proxy = await startPortcullis(parsePolicy(policy, policyFile), { logger: capturingLogger(() => undefined), policyFile, watchPolicy: false });
    [plainPort, tlsPort] = proxy.addresses.map((address) => address.port) as [number, number];
  }, 120_000);

  afterAll(async () => {
    await proxy?.close(2_000);
    await apache?.stop();
    await layout?.remove();
    if (work !== undefined) await rm(work, { recursive: true, force: true });
  });

  function plainGet(host: string, path: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: plainPort, path, headers: { host }, agent: false }, (res) => collect(res, resolve));
      req.on('error', reject);
    });
  }

  function tlsGet(host: string, path: string): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = https.get({ host: '127.0.0.1', port: tlsPort, path, servername: host, headers: { host }, ca, agent: false }, (res) => {
        const certificateNames = (res.socket as TLSSocket).getPeerCertificate().subjectaltname;
        collect(res, (answer) => resolve({ ...answer, certificateNames }));
      });
      req.on('error', reject);
    });
  }

  it("redirects plain HTTP to https on every site, as certbot's :80 vhosts did, and no longer in Apache", async () => {
    expect(await plainGet('blog.example.org', '/a?b=1')).toMatchObject({ status: 308, location: 'https://blog.example.org/a?b=1' });
    expect(await plainGet('x.shop.example.org', '/')).toMatchObject({ status: 308, location: 'https://x.shop.example.org/' });
  });

  it("forwards an ACME challenge over plain HTTP to the site's docroot, so certbot --webroot renews through portcullis", async () => {
    expect(await plainGet('blog.example.org', '/.well-known/acme-challenge/token-1')).toMatchObject({ status: 200, body: 'acme-token-1\n' });
  });

  it("serves HTTPS from each site's own vhost, now on loopback, with the site's certificate", async () => {
    const blog = await tlsGet('blog.example.org', '/');
    expect(blog).toMatchObject({ status: 200, body: 'site:blog.example.org\n' });
    expect(blog.certificateNames).toContain('DNS:www.blog.example.org');
    expect(await tlsGet('www.blog.example.org', '/')).toMatchObject({ status: 200, body: 'site:blog.example.org\n' });
    const shop = await tlsGet('a.shop.example.org', '/');
    expect(shop).toMatchObject({ status: 200, body: 'site:shop.example.org\n' });
    expect(shop.certificateNames).toContain('DNS:*.shop.example.org');
  });

  it('keeps xmlrpc.php on the --allow-xmlrpc site and blocks it on the other', async () => {
    expect(await tlsGet('blog.example.org', '/xmlrpc.php')).toMatchObject({ status: 200, body: 'xmlrpc:blog.example.org\n' });
    expect((await tlsGet('shop.example.org', '/xmlrpc.php')).status).toBe(403);
  });
});

function collect(res: http.IncomingMessage, done: (answer: Answer) => void): void {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (body += chunk));
  res.on('end', () => done({ status: res.statusCode ?? 0, ...(res.headers.location === undefined ? {} : { location: res.headers.location }), body }));
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}
