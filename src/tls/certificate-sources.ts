import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { TlsConfig } from '../config/schema.js';
import type { CertificateSource } from './certificate-pair.js';
import type { CertificateProblem } from './certificate-problem.js';

/** The files certbot keeps in each folder of its live directory (symlinks into ../../archive/NAME/). */
export const CERTBOT_CERT_FILE = 'fullchain.pem';
export const CERTBOT_KEY_FILE = 'privkey.pem';

/** What the policy's `tls` asks to serve, in order: the pairs, then the certbot folders by name. */
export interface CertificateSourceList {
  readonly sources: readonly CertificateSource[];
  /** Set when `tls.certbot_live` could not be listed: its folders are unknown this time, not gone. */
  readonly certbotProblem?: CertificateProblem;
}

/**
 * Lists the certificates `tls` names. A certbot live directory holds one
 * folder per certificate name and a README; every folder (or symlink to one)
 * not starting with a dot is a certificate.
 */
export async function listCertificateSources(config: TlsConfig): Promise<CertificateSourceList> {
  const sources: CertificateSource[] = config.certificates.map((pair) => ({ certFile: pair.cert, keyFile: pair.key }));
  const dir = config.certbot_live;
  if (dir === undefined) return { sources };
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    return {
      sources,
      certbotProblem: { file: dir, reason: 'unreadable', message: `cannot list tls.certbot_live: ${(error as Error).message}; give certbot's live directory (/etc/letsencrypt/live) and let portcullis's user read it` },
    };
  }
  const folders: string[] = [];
  for (const name of names.filter((entry) => !entry.startsWith('.')).sort()) {
    // stat, not the dirent: certbot's folders are real, but a symlinked one must count too.
    const isFolder = await stat(join(dir, name)).then((found) => found.isDirectory(), () => false);
    if (isFolder) folders.push(name);
  }
  for (const name of folders) sources.push({ name, certFile: join(dir, name, CERTBOT_CERT_FILE), keyFile: join(dir, name, CERTBOT_KEY_FILE) });
  return { sources };
}

/** A stable key for a source across reloads: the same files are the same certificate slot. */
export function sourceKey(source: CertificateSource): string {
  return `${source.certFile}\u0000${source.keyFile}`;
}
