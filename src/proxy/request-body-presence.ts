import type { IncomingMessage } from 'node:http';

/**
 * Whether the request carries a body. HTTP/1.1 says so in its headers (RFC
 * 9112 §6.3: a length other than 0, or a transfer coding); HTTP/2 need not
 * (a body is DATA frames after HEADERS without END_STREAM, RFC 9113 §8.1), so
 * there the stream tells: a request that ended with its headers has none.
 */
export function hasRequestBody(req: IncomingMessage): boolean {
  const stream = (req as { stream?: { endAfterHeaders?: boolean } }).stream;
  if (stream !== undefined) return stream.endAfterHeaders !== true;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
