import { execFile } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApache, type ApacheHandle } from '../support/apache.js';
import { runCli } from '../support/cli.js';
import { request } from '../support/http-client.js';
import { startTestProxy, type TestProxy } from '../support/portcullis.js';
import { certbotFiles, installCertbotVersion, TestCertificateAuthority, type IssuedCertificate } from '../support/test-certificates.js';
import { systemTestGate } from '../system/support/netns.js';

const run = promisify(execFile);
const HOOK = join(import.meta.dirname, '../../deploy/certbot/portcullis-reload');
const REPO = join(import.meta.dirname, '../..');
const CLI = join(REPO, 'src/cli/main.ts');
const isRoot = process.getuid?.() === 0;
/** As root, a group other than our own, so the group read is what lets the reader in; else ours (chgrp to it needs no root). */
const GROUP = isRoot ? 'nogroup' : (await run('id', ['-gn'])).stdout.trim();
const GROUP_ID = Number((await run('getent', ['group', GROUP])).stdout.split(':')[2]);
/** Reading as another user needs root; as in the system tests, CI=true makes a skip a failure. */
const rootGate = await systemTestGate({ tools: ['setpriv'] });

interface HookRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * deploy/certbot/portcullis-reload run for real, as certbot runs a deploy
 * hook (RENEWED_LINEAGE set, executed by its shebang), against a certbot
 * live/archive tree of real openssl-made certificates, with the copy
 * directory and reload command pointed into a temp dir: the copies are
 * plain 0640 files of the portcullis group that `portcullis check` accepts
 * and a running portcullis serves after a renewal.
 */
describe('deploy/certbot/portcullis-reload', () => {
  let dir: string;
  let letsencrypt: string;
  let certDir: string;
  let reloadLog: string;
  let ca: TestCertificateAuthority;
  let v1: IssuedCertificate;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-certbot-'));
    // A reader that is not us must be able to walk down to the copies.
    await chmod(dir, 0o755);
    await mkdir(join(dir, 'ca'));
    ca = await TestCertificateAuthority.create(join(dir, 'ca'));
    letsencrypt = join(dir, 'letsencrypt');
    certDir = join(dir, 'portcullis-certs');
    reloadLog = join(dir, 'reloads.log');
    v1 = await ca.issue('site', { dnsNames: ['site.test', 'www.site.test'] });
    await installCertbotVersion(letsencrypt, 'site.test', 1, await certbotFiles(v1));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function runHook(env: Record<string, string>): Promise<HookRun> {
    try {
      const { stdout, stderr } = await run(HOOK, [], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, cwd: REPO, timeout: 20_000 });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const failed = error as { code?: number; stdout?: string; stderr?: string };
      return { code: failed.code ?? -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
    }
  }

  const hookEnv = (lineage: string, reload = 'echo reloaded >> "$RELOAD_LOG"'): Record<string, string> => ({
    RENEWED_LINEAGE: lineage,
    PORTCULLIS_CERT_DIR: certDir,
    PORTCULLIS_GROUP: GROUP,
    PORTCULLIS_RELOAD: reload,
    RELOAD_LOG: reloadLog,
  });

  async function checkPolicy(): Promise<{ file: string; code: number | null; stdout: string; stderr: string }> {
    const file = join(dir, 'policy.yaml');
    await writeFile(file, `listen:\n  - "127.0.0.1:8080"\n  - { address: "127.0.0.1:8443", tls: true }\ntls:\n  certbot_live: "${certDir}"\n`);
    return { file, ...(await runCli(['check', file])) };
  }

  it('copies fullchain.pem and privkey.pem as plain files, 0640 of the portcullis group, and reloads once', async () => {
    const result = await runHook(hookEnv(join(letsencrypt, 'live', 'site.test')));
    expect(result).toEqual({ code: 0, stdout: `portcullis-reload: copied site.test to ${certDir}/site.test\n`, stderr: '' });
    expect(await readFile(reloadLog, 'utf8')).toBe('reloaded\n');
    for (const [file, original] of [['fullchain.pem', v1.fullchainFile], ['privkey.pem', v1.keyFile]] as const) {
      const copy = join(certDir, 'site.test', file);
      const info = await lstat(copy);
      expect(info.isFile(), `${file} is a file, not certbot's symlink`).toBe(true);
      expect(info.mode & 0o777, file).toBe(0o640);
      expect(info.gid, file).toBe(GROUP_ID);
      expect(await readFile(copy, 'utf8')).toBe(await readFile(original, 'utf8'));
    }
    for (const folder of [certDir, join(certDir, 'site.test')]) {
      const info = await stat(folder);
      expect(info.mode & 0o777, folder).toBe(0o750);
      expect(info.gid, folder).toBe(GROUP_ID);
    }
  });

  it('leaves what `portcullis check` accepts with tls.certbot_live pointing at the copies', async () => {
    const { file, code, stdout, stderr } = await checkPolicy();
    expect(stderr).toBe('');
    expect(stdout).toBe(`${file}: OK (0 limit rules, 0 blocks, upstream http://127.0.0.1:8080, 1 certificate: site.test)\n`);
    expect(code).toBe(0);
  });

  it.skipIf(rootGate.skip)('lets a member of the group read the key, and nobody else', async () => {
    const key = join(certDir, 'site.test', 'privkey.pem');
    const asUser = (gid: number) => run('setpriv', ['--reuid=65534', `--regid=${gid}`, '--clear-groups', 'cat', key]);
    expect((await asUser(GROUP_ID)).stdout).toBe(await readFile(v1.keyFile, 'utf8'));
    await expect(asUser(1)).rejects.toThrow(/Permission denied/);
  });

  it('a renewal replaces the copies, and a running portcullis serves the new certificate after the hook', async () => {
    let proxy: TestProxy | undefined;
    try {
      proxy = await startTestProxy('http://127.0.0.1:9', `tls:\n  certbot_live: "${certDir}"\n`, {
        listenYaml: '[{ address: "127.0.0.1:0", tls: true }]',
        adminToken: 'hook-test-token-0123',
      });
      const port = proxy.port;
      const served = () =>
        new Promise<string>((resolve, reject) => {
          const socket = tls.connect({ host: '127.0.0.1', port, servername: 'site.test', rejectUnauthorized: false }, () => {
            resolve(socket.getPeerCertificate().fingerprint256);
            socket.destroy();
          });
          socket.on('error', reject);
        });
      expect(await served()).toBe(v1.fingerprint256);

      const v2 = await ca.issue('site', { dnsNames: ['site.test', 'www.site.test'] });
      await installCertbotVersion(letsencrypt, 'site.test', 2, await certbotFiles(v2));
      // The reload the hook runs is the real `portcullis reload` against the admin API.
      const reload = `"${process.execPath}" --import tsx "${CLI}" reload --admin ${proxy.adminUrl}`;
      const result = await runHook({ ...hookEnv(join(letsencrypt, 'live', 'site.test'), reload), PORTCULLIS_ADMIN_TOKEN: 'hook-test-token-0123' });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(await readFile(join(certDir, 'site.test', 'privkey.pem'), 'utf8')).toBe(await readFile(v2.keyFile, 'utf8'));
      expect(await readFile(join(certDir, 'site.test', 'fullchain.pem'), 'utf8')).toBe(await readFile(v2.fullchainFile, 'utf8'));
      // Served to new connections once re-read: at once after the reload, 0.3 s after the files change without one.
      for (let attempt = 0; attempt < 100 && (await served()) !== v2.fingerprint256; attempt++) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(await served()).toBe(v2.fingerprint256);
      expect((await checkPolicy()).code).toBe(0);
    } finally {
      await proxy?.close();
    }
  });

  it('refuses to run without RENEWED_LINEAGE, or with a lineage missing its key, and then reloads nothing', async () => {
    const before = await readFile(reloadLog, 'utf8');
    const unset = await runHook({ PORTCULLIS_CERT_DIR: certDir, PORTCULLIS_GROUP: GROUP, PORTCULLIS_RELOAD: 'echo reloaded >> "$RELOAD_LOG"', RELOAD_LOG: reloadLog });
    expect(unset.code).not.toBe(0);
    expect(unset.stderr).toContain('RENEWED_LINEAGE is not set');
    const broken = join(dir, 'broken-lineage', 'other.test');
    await mkdir(broken, { recursive: true });
    await writeFile(join(broken, 'fullchain.pem'), await readFile(v1.fullchainFile));
    const missingKey = await runHook(hookEnv(broken));
    expect(missingKey).toEqual({ code: 1, stdout: '', stderr: `portcullis-reload: ${broken}/privkey.pem is missing or unreadable\n` });
    await expect(stat(join(certDir, 'other.test'))).rejects.toThrow(/ENOENT/);
    expect(await readFile(reloadLog, 'utf8')).toBe(before);
  });
});

/**
 * `certbot certonly --webroot -w DOCROOT` through portcullis: certbot writes
 * the token under DOCROOT/.well-known/acme-challenge/, and the CA fetches it
 * over plain HTTP on port 80, where portcullis redirects everything else to
 * HTTPS and blocks `/.well-known/`.
 */
describe('certbot --webroot through a redirecting listener', () => {
  let apache: ApacheHandle;
  let proxy: TestProxy;

  beforeAll(async () => {
    apache = await startApache({ files: { '.well-known/acme-challenge/Yw9kQ3': 'Yw9kQ3.thumbprint\n' } });
    proxy = await startTestProxy(apache.url, 'block:\n  - path_prefix: /.well-known/\n', { listenYaml: '[{ address: "127.0.0.1:0", redirect_https: true }]' });
  });

  afterAll(async () => {
    await proxy?.close();
    await apache?.stop();
  });

  it("answers the CA's challenge from Apache's webroot, and redirects the rest", async () => {
    const challenge = await request(proxy.url, { path: '/.well-known/acme-challenge/Yw9kQ3', headers: { host: 'site.test' } });
    expect(challenge.status).toBe(200);
    expect(challenge.body).toBe('Yw9kQ3.thumbprint\n');
    const page = await request(proxy.url, { path: '/index.html', headers: { host: 'site.test' } });
    expect(page.status).toBe(308);
    expect(page.headers.location).toBe('https://site.test/index.html');
    // The block still holds for the rest of /.well-known/: only challenges are exempt.
    expect((await request(proxy.url, { path: '/.well-known/security.txt', headers: { host: 'site.test' } })).status).toBe(403);
  });
});
