import type { ServerResponse } from 'node:http';
import { Http2ServerResponse } from 'node:http2';

/**
 * Writes a short text answer of portcullis's own (a refusal or an upstream
 * failure). `no-store` because a refusal is about this client at this moment:
 * a shared cache must not serve it to anyone else.
 */
export function writePlainResponse(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const body = `${text}\n`;
  const fields: Record<string, string | number> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...headers,
  };
  // HTTP/2 forbids connection-specific fields (Node throws on them): the stream ends, the session stays.
  if ((res as unknown) instanceof Http2ServerResponse) delete fields.connection;
  try {
    res.writeHead(status, fields);
  } catch {
    // Fields an earlier writeHead left behind that HTTP/2 refuses: this
    // answer cannot be written, so the stream is cut rather than the
    // throw reaching (and ending) the process.
    res.destroy();
    return;
  }
  res.end(body);
}
