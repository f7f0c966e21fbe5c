/**
 * Throw-away certificates for TLS tests, made with the openssl CLI into a temp
 * dir (never committed): a CA, and host certificates it signs with the SANs
 * asked for, so clients can verify them against the CA as they would in production.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

export interface TestCa {
  readonly dir: string;
  readonly caFile: string;
  readonly ca: string;
  /** A certificate for `names` (DNS SANs, the first also as CN), signed by this CA. */
  issue(names: readonly string[], file?: string): Promise<TestCertificate>;
  /** Removes every file. */
  remove(): Promise<void>;
}

/** Makes a CA in a fresh temp dir. */
export async function createTestCa(): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-ca-'));
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=portcullis test CA']);
  let serial = 1;
  return {
    dir,
    caFile,
    ca: await readFile(caFile, 'utf8'),
    async issue(names, file = names[0] as string) {
      const keyFile = join(dir, `${file}.key`);
      const csr = join(dir, `${file}.csr`);
      const certFile = join(dir, `${file}.pem`);
      const ext = join(dir, `${file}.ext`);
      await writeFile(ext, `subjectAltName=${names.map((name) => `DNS:${name}`).join(',')}\n`);
      await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', csr, '-subj', `/CN=${names[0]}`]);
      await run('openssl', ['x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-set_serial', String(serial++), '-days', '2', '-extfile', ext, '-out', certFile]);
      return { certFile, keyFile, cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
