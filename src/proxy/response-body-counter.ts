import type { ServerResponse } from 'node:http';

const counted = new WeakMap<ServerResponse, { bytes: number }>();

/**
 * Counts the body bytes written to `res` from now on (Apache's `%b`, for the
 * access log). The response's own write/end are wrapped: the forwarder streams
 * through them, so no extra stream sits in the path. Used only when an access
 * log is configured.
 */
export function countBodyBytes(res: ServerResponse): void {
  const tally = { bytes: 0 };
  counted.set(res, tally);
  const write = res.write;
  const end = res.end;
  const add = (chunk: unknown, encoding?: unknown) => {
    if (typeof chunk === 'string') tally.bytes += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    else if (chunk instanceof Uint8Array) tally.bytes += chunk.byteLength;
  };
  // HTTP/2's end(chunk) writes the chunk through this.write: counted once, by end.
  let ending = false;
  res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
    if (!ending) add(chunk, rest[0]);
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as ServerResponse['write'];
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (args.length > 0 && typeof args[0] !== 'function') add(args[0], args[1]);
    ending = true;
    try {
      return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    } finally {
      ending = false;
    }
  } as ServerResponse['end'];
}

/** Body bytes written to `res` since `countBodyBytes`; 0 when it was never called. */
export function bodyBytesOf(res: ServerResponse): number {
  return counted.get(res)?.bytes ?? 0;
}
