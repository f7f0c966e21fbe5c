import type { Logger } from 'pino';
import type { TlsConfig } from '../config/schema.js';
import type { TlsMetrics } from '../metrics/tls-metrics.js';
import { checkCertificatePair, readCertificateFiles, sameCertificateFiles, type CertificateSource, type LoadedCertificate } from './certificate-pair.js';
import { formatCertificateProblem, type CertificateProblem } from './certificate-problem.js';
import { listCertificateSources, sourceKey } from './certificate-sources.js';

/** One source's certificate across reloads: what it serves, and the last problem logged for it (each logged once). */
export interface Slot {
  readonly source: CertificateSource;
  served: LoadedCertificate | null;
  lastReported: string | null;
}

/** Where a slot's problems are logged and counted. */
export interface SlotReporting {
  readonly logger: Logger;
  readonly metrics: TlsMetrics;
}

/**
 * Loads every source, starting from `previous`'s slots (a slot whose file
 * fails keeps what it served). The first certificate of a name keeps it; a
 * later one is a `duplicate_name` problem. Logs and counts each problem of a
 * slot once, not at every reload it persists through.
 */
export async function loadSlots(
  config: TlsConfig,
  previous: ReadonlyMap<string, Slot>,
  nowMs: number,
  options: SlotReporting,
  trigger: string,
): Promise<{ slots: Map<string, Slot>; certificates: LoadedCertificate[]; problems: CertificateProblem[] }> {
  const listing = await listCertificateSources(config);
  const sources = [...listing.sources];
  const problems: CertificateProblem[] = [];
  if (listing.certbotProblem !== undefined) {
    problems.push(listing.certbotProblem);
    report(listing.certbotProblem, null, options, trigger);
    // The folders are unknown this time, not gone: keep serving the ones known before.
    for (const slot of previous.values()) if (slot.source.name !== undefined) sources.push(slot.source);
  }
  const slots = new Map<string, Slot>();
  const certificates: LoadedCertificate[] = [];
  const byName = new Map<string, LoadedCertificate>();
  for (const source of sources) {
    const key = sourceKey(source);
    const old = previous.get(key);
    // A copy: a reload that ends up serving nothing leaves the running slots as they were.
    const slot: Slot = { source, served: old?.served ?? null, lastReported: old?.lastReported ?? null };
    slots.set(key, slot);
    const files = await readCertificateFiles(source);
    let problem: CertificateProblem | null = null;
    if (!('cert' in files)) {
      problem = files;
    } else if (slot.served === null || !sameCertificateFiles(slot.served.files, files)) {
      const check = checkCertificatePair(source, files, nowMs);
      if (check.ok) slot.served = check.certificate;
      else problem = check.problem;
    }
    const first = slot.served === null ? undefined : byName.get(slot.served.name);
    if (problem === null && first !== undefined) {
      problem = {
        file: source.certFile,
        reason: 'duplicate_name',
        message: `has the name ${first.name}, as ${first.source.certFile} listed before it, which serves it: remove one of the two (an RSA and an ECDSA certificate for one name cannot be served side by side)`,
      };
    }
    if (problem === null) {
      slot.lastReported = null;
    } else {
      problems.push(problem);
      if (slot.lastReported !== problem.message) {
        slot.lastReported = problem.message;
        report(problem, first === undefined ? slot.served : null, options, trigger);
      }
    }
    if (slot.served !== null && first === undefined) {
      certificates.push(slot.served);
      byName.set(slot.served.name, slot.served);
    }
  }
  return { slots, certificates, problems };
}

function report(problem: CertificateProblem, kept: LoadedCertificate | null, options: SlotReporting, trigger: string): void {
  if (problem.reason !== undefined) options.metrics.countRejected(problem.reason);
  const outcome = kept === null ? 'not served' : `not served; the previous certificate of ${kept.name} (valid until ${new Date(kept.notAfterMs).toISOString()}) stays`;
  options.logger.error({ file: problem.file, reason: problem.reason, certificate: kept?.name, trigger }, `TLS certificate ${outcome}: ${formatCertificateProblem(problem)}`);
}
