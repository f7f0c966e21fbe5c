import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { certbotFiles, installCertbotVersion, TestCertificateAuthority, type IssuedCertificate } from '../support/test-certificates.js';

describe('portcullis check with TLS certificates', () => {
  let dir: string;
  let a: IssuedCertificate;
  let c: IssuedCertificate;
  let expired: IssuedCertificate;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-check-tls-'));
    const ca = await TestCertificateAuthority.create(dir);
    a = await ca.issue('a', { dnsNames: ['a.test', '*.b.test'] });
    c = await ca.issue('c', { dnsNames: ['c.test'] });
    expired = await ca.issue('expired', { dnsNames: ['old.test'], notBefore: '20200101000000Z', notAfter: '20200201000000Z' });
    await installCertbotVersion(join(dir, 'letsencrypt'), 'c.test', 1, await certbotFiles(c));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function check(name: string, tls: string) {
    const file = join(dir, `${name}.yaml`);
    await writeFile(file, `listen:\n  - "127.0.0.1:8080"\n  - { address: "127.0.0.1:8443", tls: true }\ntls:\n${tls}`);
    return { file, result: await runCli(['check', file]) };
  }

  it('reads and checks every certificate, and names what it would serve', async () => {
    const { file, result } = await check('good', `  certificates:\n    - { cert: "${a.fullchainFile}", key: "${a.keyFile}" }\n  certbot_live: "${join(dir, 'letsencrypt', 'live')}"\n  default: c.test\n`);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${file}: OK (0 limit rules, 0 blocks, upstream http://127.0.0.1:8080, 2 certificates: a.test, c.test)\n`);
    expect(result.code).toBe(0);
  });

  it('reports each certificate problem as FILE: what is wrong and what to do, and exits 1', async () => {
    const missing = join(dir, 'missing.pem');
    const { file, result } = await check(
      'bad',
      [
        '  certificates:',
        `    - { cert: "${a.fullchainFile}", key: "${a.keyFile}" }`,
        `    - { cert: "${expired.fullchainFile}", key: "${expired.keyFile}" }`,
        `    - { cert: "${c.fullchainFile}", key: "${a.keyFile}" }`,
        `    - { cert: "${missing}", key: "${a.keyFile}" }`,
        '  default: nope.test',
        '',
      ].join('\n'),
    );
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toEqual([
      `${expired.fullchainFile}: expired at 2020-02-01T00:00:00Z: renew it (certbot renew) or replace the file`,
      `${a.keyFile}: is not the private key of ${c.fullchainFile}: pair each certificate with its own key (certbot: fullchain.pem and privkey.pem of the same folder)`,
      expect.stringMatching(new RegExp(`^${missing.replaceAll('.', '\\.')}: cannot read the certificate: ENOENT.*; check its path in tls.certificates, and that portcullis's user may read it$`)),
      'tls.default: names "nope.test", but no certificate served has that name or covers that host (served: a.test); clients without SNI get the first, a.test',
      `${file}: 4 certificate problems`,
      '',
    ]);
  });

  it('exits 1 when no certificate at all can be served', async () => {
    const { file, result } = await check('none', `  certbot_live: "${join(dir, 'no-such-dir')}"\n`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${join(dir, 'no-such-dir')}: cannot list tls.certbot_live: ENOENT`);
    expect(result.stderr).toContain(`${file}: 1 certificate problem\n`);
  });
});
