import { normalizeRequestPath } from './request-path.js';

/** Where certbot's webroot challenges live (RFC 8555 §8.3). */
export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

/**
 * Whether `target` is an ACME HTTP-01 challenge (certbot's webroot), which
 * must reach Apache over plain HTTP, exempt from blocks and the redirect.
 * Every view of the normalised path must be under the prefix, so no spelling
 * that Apache could resolve elsewhere gets the exemption.
 */
export function isAcmeChallenge(target: string): boolean {
  if (!target.startsWith('/.well-known/')) return false;
  const path = normalizeRequestPath(target);
  return path.ok && path.views.every((view) => view.startsWith(ACME_CHALLENGE_PREFIX));
}
