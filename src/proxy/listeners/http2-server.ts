import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { Clock } from '../../core/clock.js';
import type { TimerHandle, Timers } from '../../core/timers.js';
import { CONNECTIONS_CHECK_MS } from './http-server-factory.js';
import { Http2SessionGuard, MAX_CONCURRENT_STREAMS, MAX_REFUSED_STREAMS, type Http2Hooks, type Http2Limits } from './http2-session-guard.js';

export type { Http2Hooks, Http2Limits } from './http2-session-guard.js';

/** An HTTP/2 server fed TLS sockets, with what shutdown and reload need. */
export interface Http2ServerHandle {
  readonly server: http2.Http2Server;
  configure(limits: Http2Limits): void;
  /** Asks every session to finish (GOAWAY): no new streams, open ones complete. */
  drain(): void;
  /** Ends every session at once. */
  destroyAll(): void;
}

/** Time for the HTTP/2 server: the guards' budgets and their periodic check. */
export interface Http2Time {
  readonly clock: Clock;
  readonly timers: Timers;
}

/**
 * Node's HTTP/2 server, bounded: stream, header and memory limits in the
 * SETTINGS it advertises and in nghttp2, and a guard on every session
 * (http2-session-guard.ts) that ends floods and rapid resets with GOAWAY and
 * reports them. Every request goes through `onRequest`, the same pipeline as
 * HTTP/1.1 (Node's compatibility API gives requests and responses the
 * surface the pipeline uses).
 */
export function createHttp2Server(limits: Http2Limits, onRequest: (req: IncomingMessage, res: ServerResponse) => void, hooks: Http2Hooks, time: Http2Time): Http2ServerHandle {
  let current = limits;
  const guards = new Map<http2.ServerHttp2Session, Http2SessionGuard>();
  // One check for all sessions, running only while there are sessions (no timer per session).
  let sweep: TimerHandle = null;
  const server = http2.createServer({
    settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: 32 * 1024 },
    // nghttp2's own guards: header-list size per request, pending pings and
    // SETTINGS, invalid frames and refused streams per session, memory.
    maxHeaderListPairs: 128,
    maxOutstandingPings: 10,
    maxSessionInvalidFrames: 100,
    maxSessionRejectedStreams: MAX_REFUSED_STREAMS,
    maxSessionMemory: 10,
  });
  server.on('request', (req, res) => {
    // Started once the whole read it came in is parsed: a stream the same
    // read cancelled (rapid reset sends HEADERS and RST_STREAM together)
    // costs no decision and never reaches Apache.
    time.timers.setImmediate(() => {
      if (!res.stream.destroyed) onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse);
    });
  });
  server.on('session', (session) => {
    guards.set(session, new Http2SessionGuard(session, hooks, time.clock, () => current));
    sweep ??= time.timers.setInterval(() => {
      const nowMs = time.clock.nowMs();
      for (const guard of guards.values()) guard.check(nowMs);
    }, CONNECTIONS_CHECK_MS);
    session.on('close', () => {
      guards.delete(session);
      if (guards.size > 0) return;
      time.timers.clearInterval(sweep);
      sweep = null;
    });
  });
  server.on('sessionError', ignore);
  return {
    server,
    configure(next) {
      current = next;
    },
    drain() {
      for (const session of guards.keys()) session.close();
    },
    destroyAll() {
      for (const session of guards.keys()) session.destroy();
    },
  };
}

/** Whether a response is an HTTP/2 stream's (compatibility API). */
export function isHttp2(res: unknown): boolean {
  return res instanceof http2.Http2ServerResponse;
}

/** Ends the HTTP/2 session a response belongs to, with GOAWAY, once its open streams are done. */
export function endSession(res: ServerResponse): void {
  const session = (res as unknown as http2.Http2ServerResponse).stream.session;
  if (session !== undefined && !session.destroyed) session.close();
}

/** Resets are a client's normal behaviour: never a crash. */
function ignore(): void {}
