import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { Duplex } from 'node:stream';

/** Timeouts of HTTP/2 sessions and streams, from `timeouts` in the policy. */
export interface Http2Limits {
  /** A session with no stream open and no frame for this long is closed (`timeouts.client_keepalive`). */
  readonly idleTimeoutMs: number;
  /** A stream silent for this long is cancelled (`timeouts.client_request`). */
  readonly requestTimeoutMs: number;
}

/** What the HTTP/2 side reports besides requests. */
export interface Http2Hooks {
  /** A session ended for abuse (flood of invalid frames, rejected streams, resets): a strike for its peer. */
  onSessionError(socket: Duplex, rule: 'http2_abuse'): void;
}

/** An HTTP/2 server fed TLS sockets, with what shutdown and reload need. */
export interface Http2ServerHandle {
  readonly server: http2.Http2Server;
  configure(limits: Http2Limits): void;
  /** Asks every session to finish (GOAWAY): no new streams, open ones complete. */
  drain(): void;
  /** Ends every session at once. */
  destroyAll(): void;
}

/** Concurrent streams a client may open on one connection (nginx's default too). */
export const MAX_CONCURRENT_STREAMS = 100;

/** Streams a client may cancel on one session before it is treated as a rapid-reset attack (CVE-2023-44487). */
export const MAX_CLIENT_RESETS = 200;

/**
 * Node's HTTP/2 server, bounded: stream, header and memory limits in the
 * SETTINGS it advertises and in nghttp2, and sessions that flood it with
 * invalid frames, refused streams or cancelled streams are ended (GOAWAY)
 * and their peer struck. Every request goes through `onRequest`, the same
 * pipeline as HTTP/1.1 (Node's compatibility API gives requests and
 * responses the surface the pipeline uses).
 */
export function createHttp2Server(limits: Http2Limits, onRequest: (req: IncomingMessage, res: ServerResponse) => void, hooks: Http2Hooks): Http2ServerHandle {
  let current = limits;
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createServer({
    settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: 32 * 1024 },
    // nghttp2's own guards: header-list size per request, pending pings and
    // SETTINGS, invalid frames and refused streams per session, memory.
    maxHeaderListPairs: 128,
    maxOutstandingPings: 10,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: 100,
    maxSessionMemory: 10,
  });
  server.on('request', (req, res) => onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse));
  server.on('session', (session) => {
    sessions.add(session);
    let resets = 0;
    const socket = session.socket as unknown as Duplex;
    session.setTimeout(current.idleTimeoutMs, () => session.close());
    session.on('close', () => sessions.delete(session));
    session.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ERR_HTTP2_TOO_MANY_INVALID_FRAMES' || error.code === 'ERR_HTTP2_SESSION_ERROR') hooks.onSessionError(socket, 'http2_abuse');
    });
    session.on('stream', (stream) => {
      stream.on('error', ignore);
      stream.setTimeout(current.requestTimeoutMs, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      stream.on('aborted', () => {
        // A client that opens and cancels streams faster than it reads answers is attacking.
        if (++resets > MAX_CLIENT_RESETS && !session.destroyed) {
          hooks.onSessionError(socket, 'http2_abuse');
          session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
          session.destroy();
        }
      });
    });
  });
  server.on('sessionError', ignore);
  return {
    server,
    configure(next) {
      current = next;
    },
    drain() {
      for (const session of sessions) session.close();
    },
    destroyAll() {
      for (const session of sessions) session.destroy();
    },
  };
}

/** Whether a response is an HTTP/2 stream's (compatibility API). */
export function isHttp2(res: ServerResponse): boolean {
  return (res as unknown) instanceof http2.Http2ServerResponse;
}

/** Ends the HTTP/2 session a response belongs to, with GOAWAY, once its open streams are done. */
export function endSession(res: ServerResponse): void {
  const session = (res as unknown as http2.Http2ServerResponse).stream.session;
  if (session !== undefined && !session.destroyed) session.close();
}

/** Resets are a client's normal behaviour: never a crash. */
function ignore(): void {}
