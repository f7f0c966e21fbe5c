import { z } from 'zod';
import { text } from './schema-values.js';

/* `tls`: certificates and protocol settings of the TLS listeners. */

const certificatePair = z.strictObject({
  /** The certificate, PEM, its chain after it (certbot's fullchain.pem). */
  cert: text('a file path'),
  /** Its private key, PEM, unencrypted (certbot's privkey.pem). */
  key: text('a file path'),
});

/**
 * Certificates for the TLS listeners. The host names each one serves are read
 * from the certificate itself (subjectAltName, else CN), and SNI picks among
 * them. All of it reloads: certificates are watched, and re-read on SIGHUP
 * and `portcullis reload`; a bad new file keeps the old certificate.
 */
export const tls = z
  .strictObject({
    /** Certificate and key file pairs, in order: where two cover one name, the first serves it. */
    certificates: z.array(certificatePair).default([]),
    /** A directory laid out like certbot's /etc/letsencrypt/live: each NAME/fullchain.pem with NAME/privkey.pem is served, after `certificates`. */
    certbot_live: text('a directory path').optional(),
    /**
     * The certificate for clients that send no server name (SNI), or one no
     * certificate covers: a certificate's name (its certbot folder, or its
     * first host name) or a host name it covers. Absent: the first certificate.
     */
    default: text('a certificate name like example.org').optional(),
  })
  .superRefine((value, ctx) => {
    const seen = new Set<string>();
    value.certificates.forEach((pair, index) => {
      if (seen.has(pair.cert)) ctx.addIssue({ code: 'custom', message: `${pair.cert} is listed twice`, path: ['certificates', index, 'cert'] });
      seen.add(pair.cert);
    });
    if (value.default !== undefined && value.certificates.length === 0 && value.certbot_live === undefined) {
      ctx.addIssue({ code: 'custom', message: 'names a default certificate, but neither tls.certificates nor tls.certbot_live gives any', path: ['default'] });
    }
  });
