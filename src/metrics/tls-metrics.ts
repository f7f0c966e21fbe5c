import { Counter, Gauge, type Registry } from 'prom-client';
import { CERTIFICATE_REJECTIONS, type CertificateRejection } from '../tls/certificate-problem.js';

/**
 * Metrics of TLS certificates. The `name` label is a certificate's name (its
 * certbot folder or its first host name): one series per certificate the
 * policy serves, a set the operator chose, never anything a client sends.
 */
export class TlsMetrics {
  readonly #expiry: Gauge<'name'>;
  readonly #rejected: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#expiry = new Gauge({
      name: 'portcullis_tls_certificate_expiry_timestamp_seconds',
      help: 'When the certificate served under each name expires (notAfter), as a Unix time; alert well before it (certbot renews 30 days ahead).',
      labelNames: ['name'],
      registers,
    });
    this.#rejected = new Counter({
      name: 'portcullis_tls_certificate_reload_failures_total',
      help: 'Certificate files refused at start or at a reload, by reason; at a reload the previous certificate of that name stays served. The log names the file.',
      labelNames: ['reason'],
      registers,
    });
    // Every series exists from the start at 0, so an alert sees the first failure as an increase.
    for (const reason of CERTIFICATE_REJECTIONS) this.#rejected.inc({ reason }, 0);
  }

  /** Records the expiry of the certificate now served under `name`. */
  setExpiry(name: string, notAfterMs: number): void {
    this.#expiry.set({ name }, Math.floor(notAfterMs / 1000));
  }

  /** Drops the series of a certificate no longer served. */
  forget(name: string): void {
    this.#expiry.remove({ name });
  }

  /** Counts a refused certificate file. */
  countRejected(reason: CertificateRejection): void {
    this.#rejected.inc({ reason });
  }
}
