import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Clock, WallClock } from '../core/clock.js';
import type { RequestFacts } from '../engine/decision-engine.js';
import type { CompiledSite } from '../policy/compiled-site.js';
import type { AccessLog, AccessLogEntry } from './access-log.js';
import type { ListenerContext } from './listeners/listener-spec.js';
import { bodyBytesOf, countBodyBytes } from './response-body-counter.js';

/**
 * The access-log lines of the proxy's exchanges: a forwarded request's once
 * the client has its answer, and, with `access_log_refused`, one for each
 * request portcullis answers itself. Every line is stamped with when the
 * request was decided and counts the body bytes the client was sent.
 */
export class AccessLogRecorder {
  readonly #log: AccessLog | null;
  readonly #wall: WallClock;
  readonly #clock: Clock;
  readonly #logger: Logger;

  constructor(log: AccessLog | null, wall: WallClock, clock: Clock, logger: Logger) {
    this.#log = log;
    this.#wall = wall;
    this.#clock = clock;
    this.#logger = logger;
  }

  /**
   * Call before a request is forwarded: starts counting the body bytes of
   * `res` and returns the wall time it was decided at, for `forwarded`;
   * null when there is no access log.
   */
  startForwarded(res: ServerResponse, decidedMs: number): number | null {
    if (this.#log === null) return null;
    countBodyBytes(res);
    return this.#wall.epochMs() - (this.#clock.nowMs() - decidedMs);
  }

  /**
   * Writes a forwarded request's line once the client has it all (or left),
   * so the byte count is what it received. Returns at once: nothing waits
   * on the line, so no promise or async frame is held per request.
   */
  forwarded(req: IncomingMessage, res: ServerResponse, request: RequestFacts, context: ListenerContext, decidedEpochMs: number): void {
    const log = this.#log;
    if (log === null) return;
    this.#whenClosed(res, () => log.record(logEntry(log, req, request, context, decidedEpochMs, res.statusCode, bodyBytesOf(res))));
  }

  /**
   * With `access_log_refused`: a line for a request portcullis answers
   * itself. Call it before the answer is written: the line is written once
   * the answer is out (or the client gone), with the body bytes the client
   * was sent; the status is the one sent, or the one meant when the client
   * left first (a held ban). `res` null: a raw socket (upgrade) whose answer
   * has no body, logged at once.
   */
  answered(req: IncomingMessage, res: ServerResponse | null, request: RequestFacts, context: ListenerContext, decidedMs: number, status: number, refusal: string): void {
    const log = this.#log;
    if (log === null || !log.refusals) return;
    const epochMs = this.#wall.epochMs() - (this.#clock.nowMs() - decidedMs);
    if (res === null) {
      log.record(logEntry(log, req, request, context, epochMs, status, 0, refusal));
      return;
    }
    countBodyBytes(res);
    this.#whenClosed(res, () => log.record(logEntry(log, req, request, context, epochMs, res.headersSent ? res.statusCode : status, bodyBytesOf(res), refusal)));
  }

  /** Runs `write` once `res` is over (sent in full, or its connection gone), at once if it is. */
  #whenClosed(res: ServerResponse, write: () => void): void {
    // 'close' comes once per response, which is dropped after it: no need for once()'s wrapper or a promise.
    const guarded = (): void => {
      // A throw here would escape Node's close event and end the process: logged as the request handler logs its own.
      try {
        write();
      } catch (error) {
        this.#logger.error({ err: error, code: 'PC_ERR_INTERNAL' }, 'internal error while writing an access-log line: line lost (please report this line)');
      }
    };
    if (res.closed) guarded();
    else res.on('close', guarded);
  }
}

/** The access-log facts of a request, for its `combined` line; `refusal` for one portcullis answered itself. */
function logEntry(log: AccessLog, req: IncomingMessage, request: RequestFacts, context: ListenerContext, epochMs: number, status: number, bytes: number, refusal?: string): AccessLogEntry {
  return {
    clientIp: request.client.ip,
    epochMs,
    method: req.method as string,
    target: req.url as string,
    httpVersion: req.httpVersion,
    status,
    bytes,
    // Always the same fields, absent ones undefined: one shape of entry for the formatter (spreads made four).
    referer: req.headers.referer,
    userAgent: req.headers['user-agent'],
    vhost: log.namesVhost ? logVhost(request.site, req) : undefined,
    port: context.port,
    refusal,
  };
}


/** `%v` for the access log: the chosen site's first exact host name, else the host the client asked for (without port). */
function logVhost(site: CompiledSite | null | undefined, req: IncomingMessage): string | undefined {
  const named = site?.config?.hosts.find((host) => !host.startsWith('*'));
  if (named !== undefined) return named;
  const host = (req.headers.host ?? (req.headers[':authority'] as string | undefined))?.toLowerCase();
  return host === undefined ? undefined : host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
}
