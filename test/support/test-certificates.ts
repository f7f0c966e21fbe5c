/**
 * Throw-away certificates for TLS tests, made with the openssl CLI into a temp
 * directory (never committed): a CA, host certificates it signs (with any
 * validity window, so an expired one is a real expired one), and certbot's
 * live/archive layout with its symlink-swapping renewal.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A host certificate as issued: the leaf, the leaf followed by the CA (like fullchain.pem), and its key. */
export interface IssuedCertificate {
  readonly certFile: string;
  readonly fullchainFile: string;
  readonly keyFile: string;
  /** SHA-256 fingerprint as Node's X509Certificate and TLSSocket.getPeerCertificate() write it (AA:BB:...). */
  readonly fingerprint256: string;
}

export interface IssueOptions {
  /** subjectAltName DNS entries; none: a certificate with only a CN. */
  readonly dnsNames?: readonly string[];
  /** Subject common name. @default the first DNS name, or `file` */
  readonly commonName?: string;
  /** Validity start and end as openssl wants them (`20200101000000Z`); default: from an hour ago for `days`. */
  readonly notBefore?: string;
  readonly notAfter?: string;
  /** @default 30 */
  readonly days?: number;
}

/** `YYYYMMDDHHMMSSZ` for a Date, as `openssl ca -startdate` takes it. */
export function opensslTime(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/** A CA of its own in `dir`, signing host certificates with `openssl ca` (which, unlike `x509 -req` in OpenSSL 3.0, takes any start and end date). */
export class TestCertificateAuthority {
  readonly caFile: string;
  readonly #dir: string;
  #serial = 0;

  private constructor(dir: string) {
    this.#dir = dir;
    this.caFile = join(dir, 'ca.pem');
  }

  /** Makes the CA (EC P-256) in `dir`, which must exist. */
  static async create(dir: string): Promise<TestCertificateAuthority> {
    const ca = new TestCertificateAuthority(dir);
    await mkdir(join(dir, 'ca-db'), { recursive: true });
    await writeFile(join(dir, 'ca-db', 'index.txt'), '');
    await writeFile(join(dir, 'ca-db', 'serial'), '1000\n');
    await writeFile(
      join(dir, 'ca.cnf'),
      [
        '[ ca ]',
        'default_ca = test_ca',
        '[ test_ca ]',
        `database = ${join(dir, 'ca-db', 'index.txt')}`,
        `new_certs_dir = ${join(dir, 'ca-db')}`,
        `serial = ${join(dir, 'ca-db', 'serial')}`,
        'default_md = sha256',
        'policy = any_subject',
        // The SAN comes from the request.
        'copy_extensions = copy',
        'unique_subject = no',
        '[ any_subject ]',
        'commonName = supplied',
        '',
      ].join('\n'),
    );
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', ca.caFile, '-days', '3650', '-subj', '/CN=portcullis test CA']);
    return ca;
  }

  /** The CA certificate, PEM, for a client's `ca`. */
  async caPem(): Promise<Buffer> {
    return readFile(this.caFile);
  }

  /** Issues a host certificate into `file`.pem / `file`.key / `file`.fullchain.pem under the CA's directory. */
  async issue(file: string, options: IssueOptions = {}): Promise<IssuedCertificate> {
    const base = join(this.#dir, `${file}-${++this.#serial}`);
    const keyFile = `${base}.key`;
    const commonName = options.commonName ?? options.dnsNames?.[0] ?? file;
    const san = options.dnsNames && options.dnsNames.length > 0 ? ['-addext', `subjectAltName=${options.dnsNames.map((name) => `DNS:${name}`).join(',')}`] : [];
    await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', `${base}.csr`, '-subj', `/CN=${commonName}`, ...san]);
    const start = options.notBefore ?? opensslTime(new Date(Date.now() - 3_600_000));
    const end = options.notAfter === undefined ? ['-days', String(options.days ?? 30)] : ['-enddate', options.notAfter];
    const certFile = `${base}.pem`;
    await openssl(['ca', '-batch', '-notext', '-config', join(this.#dir, 'ca.cnf'), '-cert', this.caFile, '-keyfile', join(this.#dir, 'ca.key'), '-in', `${base}.csr`, '-out', certFile, '-startdate', start, ...end]);
    const fullchainFile = `${base}.fullchain.pem`;
    await writeFile(fullchainFile, Buffer.concat([await readFile(certFile), await readFile(this.caFile)]));
    const { stdout } = await openssl(['x509', '-in', certFile, '-noout', '-fingerprint', '-sha256']);
    const fingerprint256 = stdout.trim().replace(/^.*=/, '');
    return { certFile, fullchainFile, keyFile, fingerprint256 };
  }
}

/**
 * Installs `issued` as version `version` of certbot certificate `name` under
 * `root` (root/live/NAME/*.pem symlinks to root/archive/NAME/*N.pem), the
 * way certbot lays it out and renews it: the archive files first, then each
 * live link unlinked and re-made, cert, privkey, chain, fullchain in turn
 * (certbot's storage.py does exactly this, not an atomic rename).
 */
export async function installCertbotVersion(root: string, name: string, version: number, files: { readonly fullchain: Buffer; readonly key: Buffer }): Promise<void> {
  const archive = join(root, 'archive', name);
  const live = join(root, 'live', name);
  await mkdir(archive, { recursive: true });
  await mkdir(live, { recursive: true });
  // cert.pem and chain.pem are not read by portcullis; they are there so the layout is certbot's.
  const contents: Record<string, Buffer> = { cert: files.fullchain, privkey: files.key, chain: Buffer.alloc(0), fullchain: files.fullchain };
  for (const kind of ['cert', 'privkey', 'chain', 'fullchain']) await writeFile(join(archive, `${kind}${version}.pem`), contents[kind] as Buffer, { mode: 0o600 });
  for (const kind of ['cert', 'privkey', 'chain', 'fullchain']) {
    const link = join(live, `${kind}.pem`);
    await unlink(link).catch(() => undefined);
    await symlink(join('..', '..', 'archive', name, `${kind}${version}.pem`), link);
  }
}

/** Reads an issued certificate's files as a certbot version takes them. */
export async function certbotFiles(issued: IssuedCertificate): Promise<{ fullchain: Buffer; key: Buffer }> {
  return { fullchain: await readFile(issued.fullchainFile), key: await readFile(issued.keyFile) };
}

async function openssl(args: string[]): Promise<{ stdout: string }> {
  try {
    return await run('openssl', args, { timeout: 20_000 });
  } catch (error) {
    const failed = error as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${failed.stderr ?? failed.message}`);
  }
}
