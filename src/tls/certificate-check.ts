import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { TlsConfig } from '../config/schema.js';
import { systemWallClock, type WallClock } from '../core/clock.js';
import { TlsCertificateError } from '../core/errors.js';
import { TlsMetrics } from '../metrics/tls-metrics.js';
import type { CertificateProblem } from './certificate-problem.js';
import { CertificateStore, type ServedCertificate } from './certificate-store.js';

/** Whether the policy's `tls` names any certificate at all. */
export function hasCertificates(config: TlsConfig): boolean {
  return config.certificates.length > 0 || config.certbot_live !== undefined;
}

/**
 * Loads the certificates of `config` exactly as `serve` would, with nothing
 * logged, counted or watched, and returns what would be served and every
 * problem (for `portcullis check`).
 */
export async function checkCertificates(config: TlsConfig, wallClock: WallClock = systemWallClock): Promise<{ served: readonly ServedCertificate[]; problems: readonly CertificateProblem[] }> {
  if (!hasCertificates(config)) return { served: [], problems: [] };
  try {
    const { store, result } = await CertificateStore.open({ config, wallClock, logger: pino({ level: 'silent' }), metrics: new TlsMetrics(new Registry()) });
    const served = store.certificates;
    store.close();
    return { served, problems: result.problems };
  } catch (error) {
    if (error instanceof TlsCertificateError) return { served: [], problems: error.problems };
    throw error;
  }
}
