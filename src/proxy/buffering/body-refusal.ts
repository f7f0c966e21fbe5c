import type { ServerResponse } from 'node:http';
import { writePlainResponse } from '../plain-response.js';
import type { BodyReceipt } from './request-body-receiver.js';

type Refusal = Extract<BodyReceipt, { kind: 'refused' }>['reason'];

/**
 * Answers a request whose body was refused. The connection is closed after
 * the answer: the rest of the body is not read as another request.
 * - 413 for a body past `request.max_body`, and for one past
 *   `buffering.request_memory` when no temp dir can be written: it can never
 *   be accepted as the proxy is configured, so "later" would be a lie;
 * - 503 with `Retry-After: 1` when the buffer budgets are spent or the disk
 *   failed: the same body may well be taken in a moment.
 */
export function writeBodyRefusal(res: ServerResponse, reason: Refusal): void {
  if (reason === 'too_large') {
    writePlainResponse(res, 413, 'Request body too large', { connection: 'close' });
  } else if (reason === 'needs_disk') {
    writePlainResponse(res, 413, 'Request body too large for this server to buffer', { connection: 'close' });
  } else {
    writePlainResponse(res, 503, 'Server busy, try again shortly', { 'retry-after': '1', connection: 'close' });
  }
}
