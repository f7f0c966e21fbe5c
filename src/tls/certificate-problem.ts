/**
 * Why a certificate file was not served. A closed set: it labels the
 * rejection counter, and scripts may match on it.
 */
export const CERTIFICATE_REJECTIONS = [
  /** The certificate or key file (or the certbot live directory) could not be read. */
  'unreadable',
  /** The certificate file holds no PEM certificate that parses. */
  'invalid_certificate',
  /** The key file holds no unencrypted PEM private key that parses. */
  'invalid_key',
  /** The key is not the certificate's. */
  'key_mismatch',
  /** The certificate's notAfter has passed. */
  'expired',
  /** The certificate's notBefore is still ahead (a clock or issuance problem). */
  'not_yet_valid',
  /** The certificate names no host that can be served (no DNS name, only IPs or a bare `*.org`). */
  'no_host_names',
  /** Another certificate listed earlier has the same name. */
  'duplicate_name',
  /** OpenSSL refused the pair (a key too weak for its security level, say). */
  'refused_by_openssl',
] as const;

export type CertificateRejection = (typeof CERTIFICATE_REJECTIONS)[number];

/** One certificate that is not served, as a value: which file, why, and what to do (`message`). */
export interface CertificateProblem {
  /** The file at fault (the key file for a bad key), or the policy key (`tls.default`). */
  readonly file: string;
  /** Absent for problems of the policy rather than of a file (`tls.default` naming nothing). */
  readonly reason?: CertificateRejection;
  readonly message: string;
}

/** `FILE: message`, the way `portcullis check` prints it. */
export function formatCertificateProblem(problem: CertificateProblem): string {
  return `${problem.file}: ${problem.message}`;
}
