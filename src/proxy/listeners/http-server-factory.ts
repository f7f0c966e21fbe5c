import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { closeWithConnectionWhileQueued } from './queued-responses.js';

/** Client-side timeouts every HTTP/1.1 server of the proxy applies. */
export interface HttpServerTimeouts {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
}

/** What an HTTP/1.1 server does with what arrives. */
export interface HttpServerHandlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  clientError(error: NodeJS.ErrnoException, socket: Duplex): void;
}

/** How often Node looks for connections past their header or request timeout: timeouts hold to within this. */
export const CONNECTIONS_CHECK_MS = 1_000;

/**
 * An HTTP/1.1 server with the proxy's timeouts, for a plain listener or for
 * the HTTP/1.1 side of a TLS one (which is fed TLS sockets and never listens
 * itself: Node starts its timeout checks only on 'listening', so `fedOnly`
 * starts them by hand; http2's allowHTTP1 fallback skips them altogether).
 */
export function createHttpServer(timeouts: HttpServerTimeouts, handlers: HttpServerHandlers, fedOnly = false): http.Server {
  const server = http.createServer(
    {
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      keepAliveTimeout: timeouts.keepAliveTimeoutMs,
      // Node checks header and request timeouts only this often (30 s by
      // default, so a 10 s client_headers cut slow-loris after ~25 s).
      connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
      // Node answers garbage with 400 and closes; nothing reaches Apache.
      requireHostHeader: true,
    },
    (req, res) => {
      closeWithConnectionWhileQueued(req, res);
      handlers.request(req, res);
    },
  );
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => handlers.upgrade(req, socket, head));
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => handlers.clientError(error, socket));
  if (fedOnly) server.emit('listening');
  return server;
}

/** Applies reloaded timeouts; connections already open keep theirs. */
export function applyTimeouts(server: http.Server, timeouts: HttpServerTimeouts): void {
  server.headersTimeout = timeouts.headersTimeoutMs;
  server.requestTimeout = timeouts.requestTimeoutMs;
  server.keepAliveTimeout = timeouts.keepAliveTimeoutMs;
}
