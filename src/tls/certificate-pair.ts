import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext, type SecureContext } from 'node:tls';
import { certificateHostNames } from './certificate-host-names.js';
import type { CertificateProblem, CertificateRejection } from './certificate-problem.js';
import { isServableHostName, normaliseHostName } from './host-name-index.js';
import { TLS_CONTEXT_SETTINGS } from './tls-settings.js';

/** Where one certificate comes from: a `tls.certificates` pair, or a folder of `tls.certbot_live`. */
export interface CertificateSource {
  /** The certbot folder name; absent for a pair, which is named after its first host name. */
  readonly name?: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** The bytes of a pair as read, kept to tell a changed file from an unchanged one. */
export interface CertificateFiles {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** A certificate that passed every check, with the context that serves it. */
export interface LoadedCertificate {
  /** Its certbot folder, or its first host name: what `tls.default` and the expiry metric call it. */
  readonly name: string;
  readonly source: CertificateSource;
  readonly files: CertificateFiles;
  /** The names it serves, lower case, SAN first (CN only without SAN), unservable ones left out. */
  readonly hostNames: readonly string[];
  readonly notBeforeMs: number;
  readonly notAfterMs: number;
  /** SHA-256 of the certificate, `AA:BB:…`, as `openssl x509 -fingerprint -sha256` prints it: tells a renewal from the one it replaced. */
  readonly fingerprint256: string;
  readonly context: SecureContext;
}

/** A checked pair, or the one problem that stops it from being served. */
export type CertificateCheck = { readonly ok: true; readonly certificate: LoadedCertificate } | { readonly ok: false; readonly problem: CertificateProblem };

/** Reads both files of a source; a file that cannot be read is a problem, not a throw. */
export async function readCertificateFiles(source: CertificateSource): Promise<CertificateFiles | CertificateProblem> {
  const read = async (file: string, what: string): Promise<Buffer | CertificateProblem> => {
    try {
      return await readFile(file);
    } catch (error) {
      const hint = source.name === undefined ? 'check its path in tls.certificates' : `check that ${source.name}/ in tls.certbot_live holds fullchain.pem and privkey.pem`;
      return rejection(file, 'unreadable', `cannot read the ${what}: ${(error as Error).message}; ${hint}, and that portcullis's user may read it`);
    }
  };
  const cert = await read(source.certFile, 'certificate');
  if (!Buffer.isBuffer(cert)) return cert;
  const key = await read(source.keyFile, 'private key');
  if (!Buffer.isBuffer(key)) return key;
  return { cert, key };
}

/**
 * Checks a pair as a client would find it, at `nowMs` (wall clock): the
 * certificate parses, the key parses and is the certificate's, it is valid
 * now, it names a host; then builds its context with the shared TLS settings.
 */
export function checkCertificatePair(source: CertificateSource, files: CertificateFiles, nowMs: number): CertificateCheck {
  const fail = (file: string, reason: CertificateRejection, message: string): CertificateCheck => ({ ok: false, problem: rejection(file, reason, message) });
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(files.cert);
  } catch (error) {
    return fail(source.certFile, 'invalid_certificate', `is not a PEM certificate (${(error as Error).message}): give the certificate with its chain (certbot's fullchain.pem), not the key or a DER file`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(files.key);
  } catch (error) {
    return fail(source.keyFile, 'invalid_key', `is not an unencrypted PEM private key (${(error as Error).message}): give the key the certificate was issued for (certbot's privkey.pem); encrypted keys are not supported`);
  }
  if (!certificate.checkPrivateKey(key)) {
    return fail(source.keyFile, 'key_mismatch', `is not the private key of ${source.certFile}: pair each certificate with its own key (certbot: fullchain.pem and privkey.pem of the same folder)`);
  }
  const notBeforeMs = Date.parse(certificate.validFrom);
  const notAfterMs = Date.parse(certificate.validTo);
  if (!(nowMs <= notAfterMs)) {
    return fail(source.certFile, 'expired', `expired at ${isoTime(notAfterMs)}: renew it (certbot renew) or replace the file`);
  }
  if (!(nowMs >= notBeforeMs)) {
    return fail(source.certFile, 'not_yet_valid', `is valid only from ${isoTime(notBeforeMs)}: check this machine's clock, or wait until then to install it`);
  }
  const names = certificateHostNames(certificate);
  const hostNames = [...new Set(names.filter(isServableHostName).map(normaliseHostName))];
  if (hostNames.length === 0) {
    const found = names.length === 0 ? 'no DNS name' : `only ${names.map((name) => JSON.stringify(name)).join(', ')}`;
    return fail(source.certFile, 'no_host_names', `covers no host name it could be served for (${found} in subjectAltName or CN): issue it for the site's host names`);
  }
  let context: SecureContext;
  try {
    context = createSecureContext({ ...TLS_CONTEXT_SETTINGS, cert: files.cert, key: files.key });
  } catch (error) {
    return fail(source.certFile, 'refused_by_openssl', `was refused by OpenSSL with ${source.keyFile} (${(error as Error).message}): reissue it with a current key (RSA 2048 bits or more, or ECDSA P-256)`);
  }
  const name = source.name ?? (hostNames[0] as string);
  return { ok: true, certificate: { name, source, files, hostNames, notBeforeMs, notAfterMs, fingerprint256: certificate.fingerprint256, context } };
}

/** Whether two reads of a pair hold the same bytes. */
export function sameCertificateFiles(a: CertificateFiles, b: CertificateFiles): boolean {
  return a.cert.equals(b.cert) && a.key.equals(b.key);
}

function rejection(file: string, reason: CertificateRejection, message: string): CertificateProblem {
  return { file, reason, message };
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
