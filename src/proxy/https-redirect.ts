import type { IncomingMessage, ServerResponse } from 'node:http';
import { writePlainResponse } from './plain-response.js';

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
