import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TlsConfig } from '../../../src/config/schema.js';
import type { WallClock } from '../../../src/core/clock.js';
import { TlsCertificateError } from '../../../src/core/errors.js';
import { ManualTimers } from '../../../src/core/timers.js';
import { TlsMetrics } from '../../../src/metrics/tls-metrics.js';
import { CertificateStore } from '../../../src/tls/certificate-store.js';
import { capturingLogger, type LogEntry } from '../../support/captured-log.js';
import { installCertbotVersion, opensslTime, TestCertificateAuthority, type IssuedCertificate } from '../../support/test-certificates.js';

const DAY_MS = 86_400_000;

let dir: string;
let ca: TestCertificateAuthority;
/** a.test and *.b.test */
let a: IssuedCertificate;
/** c.test, issued twice (a renewal) */
let c: IssuedCertificate;
let cRenewed: IssuedCertificate;
let cnOnly: IssuedCertificate;
let sanAndCn: IssuedCertificate;
let expired: IssuedCertificate;
let notYetValid: IssuedCertificate;
let tldWildcard: IssuedCertificate;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-certstore-'));
  ca = await TestCertificateAuthority.create(dir);
  a = await ca.issue('a', { dnsNames: ['a.test', '*.b.test'] });
  c = await ca.issue('c', { dnsNames: ['c.test'] });
  cRenewed = await ca.issue('c', { dnsNames: ['c.test'], days: 60 });
  cnOnly = await ca.issue('cn', { commonName: 'cn.test' });
  sanAndCn = await ca.issue('san', { dnsNames: ['san.test'], commonName: 'other.test' });
  expired = await ca.issue('expired', { dnsNames: ['expired.test'], notBefore: '20200101000000Z', notAfter: '20200201000000Z' });
  notYetValid = await ca.issue('future', { dnsNames: ['future.test'], notBefore: opensslTime(new Date(Date.now() + 30 * DAY_MS)), notAfter: opensslTime(new Date(Date.now() + 60 * DAY_MS)) });
  tldWildcard = await ca.issue('tld', { dnsNames: ['*.test'] });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const pair = (issued: IssuedCertificate, key = issued.keyFile) => ({ cert: issued.fullchainFile, key });
const tlsConfig = (config: Partial<TlsConfig>): TlsConfig => ({ certificates: [], ...config });

/** Opens a store with captured logs and its own registry. */
async function open(config: TlsConfig, wallClock?: WallClock) {
  const logs: LogEntry[] = [];
  const registry = new Registry();
  const timers = new ManualTimers();
  const { store, result } = await CertificateStore.open({ config, logger: capturingLogger((entry) => logs.push(entry)), metrics: new TlsMetrics(registry), timers, ...(wallClock ? { wallClock } : {}) });
  return { store, result, logs, registry, timers };
}

async function rejections(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('portcullis_tls_certificate_reload_failures_total')?.get();
  return Object.fromEntries((metric?.values ?? []).filter((value) => value.value > 0).map((value) => [String(value.labels['reason']), value.value]));
}

async function expiries(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('portcullis_tls_certificate_expiry_timestamp_seconds')?.get();
  return Object.fromEntries((metric?.values ?? []).map((value) => [String(value.labels['name']), value.value]));
}

describe('CertificateStore: loading', () => {
  it('reads the host names from each certificate and picks one per server name (exact, wildcard, else the first)', async () => {
    const { store, result } = await open(tlsConfig({ certificates: [pair(a), pair(c)] }));
    try {
      expect(result.problems).toEqual([]);
      expect(store.certificates.map((certificate) => [certificate.name, certificate.hostNames])).toEqual([
        ['a.test', ['a.test', '*.b.test']],
        ['c.test', ['c.test']],
      ]);
      expect(store.nameFor('a.test')).toBe('a.test');
      expect(store.nameFor('www.b.test')).toBe('a.test');
      expect(store.nameFor('C.TEST')).toBe('c.test');
      // No SNI, an unknown name, and a name one label too deep for the wildcard: the default, the first.
      expect(store.nameFor(undefined)).toBe('a.test');
      expect(store.nameFor('c.b.test.example')).toBe('a.test');
      expect(store.nameFor('x.y.b.test')).toBe('a.test');
      expect(store.contextFor('c.test')).not.toBe(store.contextFor('a.test'));
      expect(store.certificates[0]?.fingerprint256).toBe(a.fingerprint256);
    } finally {
      store.close();
    }
  });

  it('takes the CN only from a certificate without a subjectAltName', async () => {
    const { store } = await open(tlsConfig({ certificates: [pair(cnOnly), pair(sanAndCn)] }));
    try {
      expect(store.certificates.map((certificate) => certificate.hostNames)).toEqual([['cn.test'], ['san.test']]);
      expect(store.nameFor('other.test')).toBe('cn.test');
    } finally {
      store.close();
    }
  });

  it('serves tls.default to clients without SNI, by certificate name or by a host name it covers', async () => {
    for (const name of ['c.test', 'www.b.test']) {
      const { store, result } = await open(tlsConfig({ certificates: [pair(c), pair(a)], default: name }));
      expect(result.problems).toEqual([]);
      expect(store.nameFor(undefined)).toBe(name === 'c.test' ? 'c.test' : 'a.test');
      store.close();
    }
  });

  it('reports a tls.default that names nothing served, and serves the first instead', async () => {
    const { store, result, logs } = await open(tlsConfig({ certificates: [pair(a), pair(c)], default: 'nope.test' }));
    try {
      expect(result.problems).toEqual([{ file: 'tls.default', message: expect.stringContaining('names "nope.test", but no certificate served has that name or covers that host (served: a.test, c.test); clients without SNI get the first, a.test') }]);
      expect(store.nameFor(undefined)).toBe('a.test');
      expect(logs.some((entry) => entry['level'] === 40 && String(entry['msg']).startsWith('tls.default: names "nope.test"'))).toBe(true);
    } finally {
      store.close();
    }
  });

  it('loads every NAME/fullchain.pem + NAME/privkey.pem of a certbot live directory, after the pairs, and skips its README', async () => {
    const root = join(dir, 'certbot-load');
    await installCertbotVersion(root, 'zeta.test', 1, { fullchain: await readBuffer(c.fullchainFile), key: await readBuffer(c.keyFile) });
    await installCertbotVersion(root, 'alpha', 1, { fullchain: await readBuffer(cnOnly.fullchainFile), key: await readBuffer(cnOnly.keyFile) });
    await writeFile(join(root, 'live', 'README'), 'This directory contains your keys and certificates.\n');
    const { store, result } = await open(tlsConfig({ certificates: [pair(a)], certbot_live: join(root, 'live') }));
    try {
      expect(result.problems).toEqual([]);
      expect(store.certificates.map((certificate) => certificate.name)).toEqual(['a.test', 'alpha', 'zeta.test']);
      expect(store.nameFor('cn.test')).toBe('alpha');
      expect(store.nameFor('c.test')).toBe('zeta.test');
    } finally {
      store.close();
    }
  });

  it('refuses each bad file with its reason and what to do, serves the rest, logs and counts each', async () => {
    const garbage = join(dir, 'garbage.pem');
    await writeFile(garbage, 'not a certificate\n');
    const { store, result, logs, registry } = await open(
      tlsConfig({
        certificates: [
          pair(a),
          { cert: join(dir, 'missing.pem'), key: a.keyFile },
          { cert: garbage, key: a.keyFile },
          { cert: c.fullchainFile, key: garbage },
          pair(c, a.keyFile),
          pair(expired),
          pair(notYetValid),
          pair(tldWildcard),
          pair(c),
          // Same name as the one before: the first keeps it.
          pair(cRenewed),
        ],
      }),
    );
    try {
      expect(store.certificates.map((certificate) => certificate.name)).toEqual(['a.test', 'c.test']);
      expect(store.certificates[1]?.fingerprint256).toBe(c.fingerprint256);
      expect(result.problems.map((problem) => [problem.file, problem.reason])).toEqual([
        [join(dir, 'missing.pem'), 'unreadable'],
        [garbage, 'invalid_certificate'],
        [garbage, 'invalid_key'],
        [a.keyFile, 'key_mismatch'],
        [expired.fullchainFile, 'expired'],
        [notYetValid.fullchainFile, 'not_yet_valid'],
        [tldWildcard.fullchainFile, 'no_host_names'],
        [cRenewed.fullchainFile, 'duplicate_name'],
      ]);
      const messages = result.problems.map((problem) => problem.message);
      expect(messages[0]).toMatch(/^cannot read the certificate: ENOENT.*check its path in tls.certificates/);
      expect(messages[1]).toMatch(/^is not a PEM certificate .*fullchain.pem/);
      expect(messages[2]).toMatch(/^is not an unencrypted PEM private key/);
      expect(messages[3]).toBe(`is not the private key of ${c.fullchainFile}: pair each certificate with its own key (certbot: fullchain.pem and privkey.pem of the same folder)`);
      expect(messages[4]).toBe('expired at 2020-02-01T00:00:00Z: renew it (certbot renew) or replace the file');
      expect(messages[5]).toMatch(/^is valid only from \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: check this machine's clock/);
      expect(messages[6]).toBe('covers no host name it could be served for (only "*.test" in subjectAltName or CN): issue it for the site\'s host names');
      expect(messages[7]).toContain(`has the name c.test, as ${c.fullchainFile} listed before it, which serves it`);
      expect(await rejections(registry)).toEqual({ unreadable: 1, invalid_certificate: 1, invalid_key: 1, key_mismatch: 1, expired: 1, not_yet_valid: 1, no_host_names: 1, duplicate_name: 1 });
      const errors = logs.filter((entry) => entry['level'] === 50);
      expect(errors.map((entry) => [entry['file'], entry['reason']])).toEqual(result.problems.map((problem) => [problem.file, problem.reason]));
      expect(String(errors[4]?.['msg'])).toBe(`TLS certificate not served: ${expired.fullchainFile}: expired at 2020-02-01T00:00:00Z: renew it (certbot renew) or replace the file`);
    } finally {
      store.close();
    }
  });

  it('judges expiry by the injected wall clock', async () => {
    const inAMonthAndADay: WallClock = { epochMs: () => Date.now() + 31 * DAY_MS };
    const { store, result } = await open(tlsConfig({ certificates: [pair(a), pair(cRenewed)] }), inAMonthAndADay);
    try {
      // a is valid for 30 days, the renewed c for 60.
      expect(result.problems.map((problem) => [problem.file, problem.reason])).toEqual([[a.fullchainFile, 'expired']]);
      expect(store.certificates.map((certificate) => certificate.name)).toEqual(['c.test']);
    } finally {
      store.close();
    }
  });

  it('refuses to open with nothing to serve, naming every problem (PC_ERR_TLS_CERTIFICATE)', async () => {
    const failure = await open(tlsConfig({ certificates: [pair(expired), { cert: join(dir, 'missing.pem'), key: a.keyFile }] })).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TlsCertificateError);
    const error = failure as TlsCertificateError;
    expect(error.code).toBe('PC_ERR_TLS_CERTIFICATE');
    expect(error.problems.map((problem) => problem.file)).toEqual([expired.fullchainFile, join(dir, 'missing.pem')]);
    expect(error.message.split('\n')[0]).toBe('no TLS certificate can be served; fix these and start again');
    const none = await open(tlsConfig({})).catch((caught: unknown) => caught);
    expect((none as TlsCertificateError).message).toContain('tls: lists no certificate: a TLS listener needs tls.certificates or tls.certbot_live');
  });

  it('exports each served certificate\'s expiry under its name', async () => {
    const { store, registry } = await open(tlsConfig({ certificates: [pair(a), pair(cRenewed)] }));
    try {
      const served = Object.fromEntries(store.certificates.map((certificate) => [certificate.name, Math.floor(certificate.notAfterMs / 1000)]));
      expect(await expiries(registry)).toEqual(served);
      expect(served['c.test']! - served['a.test']!).toBeGreaterThan(29 * 86_400);
    } finally {
      store.close();
    }
  });
});

describe('CertificateStore: reload', () => {
  /** A pair of files in a folder of its own, for a test to overwrite. */
  async function workingPair(name: string, from: IssuedCertificate): Promise<{ cert: string; key: string }> {
    const folder = join(dir, name);
    await mkdir(folder, { recursive: true });
    const files = { cert: join(folder, 'cert.pem'), key: join(folder, 'key.pem') };
    await copyFile(from.fullchainFile, files.cert);
    await copyFile(from.keyFile, files.key);
    return files;
  }

  it('serves a renewed certificate to new lookups and leaves unchanged ones alone', async () => {
    const files = await workingPair('reload-good', c);
    const { store, registry } = await open(tlsConfig({ certificates: [pair(a), files] }));
    try {
      const aContext = store.contextFor('a.test');
      const oldContext = store.contextFor('c.test');
      await copyFile(cRenewed.fullchainFile, files.cert);
      await copyFile(cRenewed.keyFile, files.key);
      const result = await store.reload('test');
      expect(result).toEqual({ served: ['a.test', 'c.test'], changed: ['c.test'], removed: [], problems: [] });
      expect(store.contextFor('c.test')).not.toBe(oldContext);
      expect(store.contextFor('a.test')).toBe(aContext);
      expect(store.certificates[1]?.fingerprint256).toBe(cRenewed.fingerprint256);
      expect((await expiries(registry))['c.test']).toBe(Math.floor(store.certificates[1]!.notAfterMs / 1000));
      expect(await store.reload('again')).toEqual({ served: ['a.test', 'c.test'], changed: [], removed: [], problems: [] });
    } finally {
      store.close();
    }
  });

  it('keeps the old certificate when the new file is broken, mismatched or expired; logs and counts each once', async () => {
    const files = await workingPair('reload-bad', c);
    const { store, registry, logs } = await open(tlsConfig({ certificates: [pair(a), files] }));
    try {
      const served = store.contextFor('c.test');
      const attempts: [string, () => Promise<void>][] = [
        ['invalid_certificate', () => writeFile(files.cert, '-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n')],
        ['key_mismatch', async () => (await copyFile(cRenewed.fullchainFile, files.cert), await copyFile(a.keyFile, files.key))],
        ['expired', async () => (await copyFile(expired.fullchainFile, files.cert), await copyFile(expired.keyFile, files.key))],
      ];
      for (const [reason, breakIt] of attempts) {
        await breakIt();
        const result = await store.reload('test');
        expect(result.problems.map((problem) => problem.reason)).toEqual([reason]);
        expect(result.changed).toEqual([]);
        expect(store.contextFor('c.test')).toBe(served);
        expect(store.certificates[1]?.fingerprint256).toBe(c.fingerprint256);
        // The same bad file again is not logged or counted again.
        await store.reload('again');
      }
      expect(await rejections(registry)).toEqual({ invalid_certificate: 1, key_mismatch: 1, expired: 1 });
      const kept = logs.filter((entry) => entry['level'] === 50).map((entry) => String(entry['msg']));
      expect(kept).toHaveLength(3);
      expect(kept[0]).toMatch(new RegExp(`^TLS certificate not served; the previous certificate of c\\.test \\(valid until .*\\) stays: ${files.cert.replaceAll('.', '\\.')}: is not a PEM certificate`));
      expect(kept[1]).toContain(`${files.key}: is not the private key of ${files.cert}`);
      expect(kept[2]).toContain(`${files.cert}: expired at 2020-02-01T00:00:00Z`);
      // Fixed: the good renewal is served.
      await copyFile(cRenewed.keyFile, files.key);
      await copyFile(cRenewed.fullchainFile, files.cert);
      expect((await store.reload('fixed')).changed).toEqual(['c.test']);
      expect(store.certificates[1]?.fingerprint256).toBe(cRenewed.fingerprint256);
    } finally {
      store.close();
    }
  });

  it('takes the new policy\'s tls: pairs added and removed, the expiry series of a removed one dropped', async () => {
    const { store, registry } = await open(tlsConfig({ certificates: [pair(a), pair(c)] }));
    try {
      const result = await store.reload('policy', tlsConfig({ certificates: [pair(cnOnly), pair(a)], default: 'a.test' }));
      expect(result).toEqual({ served: ['cn.test', 'a.test'], changed: ['cn.test'], removed: ['c.test'], problems: [] });
      expect(store.nameFor('c.test')).toBe('a.test');
      expect(Object.keys(await expiries(registry)).sort()).toEqual(['a.test', 'cn.test']);
    } finally {
      store.close();
    }
  });

  it('keeps every certificate when a reload would leave none to serve', async () => {
    const { store } = await open(tlsConfig({ certificates: [pair(a)] }));
    try {
      const result = await store.reload('policy', tlsConfig({ certificates: [{ cert: join(dir, 'missing.pem'), key: a.keyFile }] }));
      expect(result.problems.map((problem) => problem.file)).toEqual([join(dir, 'missing.pem'), 'tls']);
      expect(store.nameFor('a.test')).toBe('a.test');
    } finally {
      store.close();
    }
  });

  it('drops a certbot folder that is deleted, keeps them all when the live directory cannot be listed', async () => {
    const root = join(dir, 'certbot-remove');
    await installCertbotVersion(root, 'one', 1, { fullchain: await readBuffer(a.fullchainFile), key: await readBuffer(a.keyFile) });
    await installCertbotVersion(root, 'two', 1, { fullchain: await readBuffer(c.fullchainFile), key: await readBuffer(c.keyFile) });
    const config = tlsConfig({ certbot_live: join(root, 'live') });
    const { store } = await open(config);
    try {
      await rm(join(root, 'live', 'two'), { recursive: true });
      expect(await store.reload('test')).toEqual({ served: ['one'], changed: [], removed: ['two'], problems: [] });
      await rm(join(root, 'live'), { recursive: true });
      const result = await store.reload('test');
      expect(result.problems.map((problem) => [problem.file, problem.reason])).toEqual([
        [join(root, 'live'), 'unreadable'],
        [join(root, 'live', 'one', 'fullchain.pem'), 'unreadable'],
      ]);
      expect(result.served).toEqual(['one']);
      expect(store.nameFor('a.test')).toBe('one');
    } finally {
      store.close();
    }
  });
});

function readBuffer(file: string): Promise<Buffer> {
  return readFile(file);
}
