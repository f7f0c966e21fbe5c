import type { IncomingMessage, ServerResponse } from 'node:http';
import { normalizeRequestPath } from '../policy/request-path.js';
import { writePlainResponse } from './plain-response.js';

const ACME_PREFIX = '/.well-known/acme-challenge/';

/**
 * Whether `target` is an ACME HTTP-01 challenge (certbot's webroot), which
 * must reach Apache over plain HTTP, exempt from blocks and the redirect.
 * Every view of the normalised path must be under the prefix, so no spelling
 * that Apache could resolve elsewhere gets the exemption.
 */
export function isAcmeChallenge(target: string): boolean {
  if (!target.startsWith('/.well-known/')) return false;
  const path = normalizeRequestPath(target);
  return path.ok && path.views.every((view) => view.startsWith(ACME_PREFIX));
}

/** Answers 308 to the same host and target over https:// (a 308 keeps the method and body, unlike 301). */
export function writeHttpsRedirect(res: ServerResponse, req: IncomingMessage, target: string): void {
  const host = req.headers.host;
  if (host === undefined || !/^[A-Za-z0-9.:[\]-]+$/.test(host)) {
    writePlainResponse(res, 400, 'Bad request: no usable Host to redirect to', { connection: 'close' });
    return;
  }
  // The client's port was the plain one: https:// goes to the default port.
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : (host.split(':')[0] as string);
  writePlainResponse(res, 308, 'Moved to HTTPS', { location: `https://${name}${target}` });
}
