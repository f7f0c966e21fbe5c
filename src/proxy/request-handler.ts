import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Duplex } from 'node:stream';
import { RateLimitedLog } from '../core/rate-limited-log.js';
import type { Decision } from '../engine/decision.js';
import type { RequestFacts } from '../engine/decision-engine.js';
import type { ClientKey } from '../identity/client-key.js';
import type { AccessLogRecorder } from './access-log-recorder.js';
import type { BanTarpit } from './ban-tarpit.js';
import { writeBodyRefusal } from './buffering/body-refusal.js';
import type { ForwardBuffering, ForwardOutcome } from './forwarder.js';
import { writeHttpsRedirect } from './https-redirect.js';
import { onSocketError } from './listeners/connection-gate.js';
import { endSession, isHttp2 } from './listeners/http2-server.js';
import type { ListenerContext } from './listeners/listener-spec.js';
import { writePlainResponse } from './plain-response.js';
import type { ProxyServerLimits, ProxyServerParts } from './proxy-server-parts.js';
import { hasRequestBody } from './request-body-presence.js';
import { requestFacts } from './request-facts.js';
import { decisionLogField } from './refusal-log-field.js';
import { writeRefusal } from './refusal-response.js';
import type { Admission, SiteDestination } from './site-routing.js';
import type { ForwardingIdentity } from './upstream-headers.js';
import type { Slot, SlotRefusal } from './upstream-slots.js';
import { refuse } from './websocket-forwarder.js';

/**
 * A request's way through the proxy: turned into facts, decided by the
 * engine, then refused, answered here (redirects, `OPTIONS *`, bodies too
 * large), or given an upstream slot and forwarded. All policy lives in the
 * engine, all transport in the forwarders; the listeners and their
 * connections are ProxyServer's.
 */
export class RequestHandler {
  readonly #parts: () => ProxyServerParts;
  readonly #limits: () => ProxyServerLimits;
  readonly #tarpit: BanTarpit;
  readonly #recorder: AccessLogRecorder;
  /** Upgraded sockets leave Node's HTTP connection tracking; kept here so shutdown can end them. */
  readonly upgraded = new Set<Duplex>();
  readonly #failures: RateLimitedLog;

  /** `parts` and `limits` are read per request: a reload swaps them. */
  constructor(parts: () => ProxyServerParts, limits: () => ProxyServerLimits, tarpit: BanTarpit, recorder: AccessLogRecorder) {
    this.#parts = parts;
    this.#limits = limits;
    this.#tarpit = tarpit;
    this.#recorder = recorder;
    const { logger, clock } = parts();
    this.#failures = new RateLimitedLog(logger, clock);
  }

  /**
   * A bug in the request path costs that request a 500 (or its connection),
   * never the process: the front door of every site must not fall with one
   * request. Logged with PC_ERR_INTERNAL, like the admin API's own.
   */
  internalError(error: unknown, connection: ServerResponse | Duplex): void {
    this.#parts().logger.error({ err: error, code: 'PC_ERR_INTERNAL' }, 'internal error while handling a request: answered 500 (please report this line)');
    if (!('writeHead' in connection)) {
      connection.destroy();
      return;
    }
    if (connection.headersSent || connection.destroyed) connection.destroy();
    else writePlainResponse(connection, 500, 'Internal error', { connection: 'close' });
  }

  /** One HTTP request, HTTP/1.1 or a stream of HTTP/2: decided, then refused, answered here, or forwarded. */
  async handle(req: IncomingMessage, res: ServerResponse, context: ListenerContext): Promise<void> {
    const { engine, clock, observer } = this.#parts();
    const who = this.#identify(req, context);
    if (who === null) {
      res.destroy();
      return;
    }
    const { request, origin } = requestFacts(req, who.client, context, engine.policy);
    const decidedMs = clock.nowMs();
    const decided = this.#settled(request, engine.decide(request, decidedMs));
    const decision = decided instanceof Promise ? await decided : decided;
    observer.decided(request, decision, decidedMs);
    // Called before the answer is written, so its body bytes are counted.
    const logAnswer = (status: number, refusal: string) => this.#recorder.answered(req, res, request, context, decidedMs, status, refusal);
    if (decision.action !== 'allow') logAnswer(decision.status, decisionLogField(decision));
    if (decision.action === 'ban' && isHttp2(res)) {
      // HTTP/2 multiplexes: the answer goes at once, then GOAWAY ends the session;
      // the reconnect meets the ban at TCP accept, before any TLS work.
      writeRefusal(res, decision);
      endSession(res);
      return;
    }
    if (decision.action === 'ban') {
      // Held per connection: a response queued behind another (pipelining) has no socket yet.
      this.#tarpit.answer(res.socket === null ? null : res, (heldMs) =>
        writeRefusal(res, { ...decision, retryAfterMs: decision.retryAfterMs - heldMs }),
      );
      return;
    }
    if (decision.action !== 'allow') {
      writeRefusal(res, decision);
      return;
    }
    // The client may have left while the shared check was awaited: its
    // 'close' has fired, so nothing would abort the upstream request and
    // Apache would do the work for nobody.
    if (decided instanceof Promise && clientLeft(res)) return;
    if (origin === null) return; // unreachable: the engine refuses what toOriginForm cannot read
    if (context.redirectHttps && request.acmeChallenge !== true) {
      logAnswer(308, 'redirect:https');
      writeHttpsRedirect(res, req, origin.target);
      return;
    }
    if (origin.target === '*') {
      // `OPTIONS *` asks about the server, not a resource: answered here, as Apache would, without a worker.
      logAnswer(200, 'options:*');
      writePlainResponse(res, 200, 'OK', { allow: 'OPTIONS, GET, HEAD, POST, PUT, DELETE, PATCH' });
      return;
    }
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > this.#limits().maxBodyBytes) {
      logAnswer(413, 'body:too_large');
      writePlainResponse(res, 413, 'Request body too large', { connection: 'close' });
      return;
    }

    // The body is received before a slot is taken: a client that sends it slowly holds no Apache worker.
    const buffered = this.#parts().buffering;
    const buffering =
      !buffered.buffers(origin.target) ? null
      : hasRequestBody(req) ? await this.#receiveBody(req, res, logAnswer)
      : buffered.withoutBody;
    if (buffering === 'answered') return;
    const { route, slots } = this.#destinationOf(request, context);
    const slot = await this.#admit(request, res, slots, logAnswer);
    if (slot === null) return;
    const startedMs = clock.nowMs();
    const decidedEpochMs = this.#recorder.startForwarded(res, decidedMs);
    let outcome: ForwardOutcome;
    try {
      outcome = await route.forwarder.forward(req, res, who.forwarding, origin, buffering ?? undefined);
    } finally {
      // The upstream is done: a buffered answer may still be on its way to a slow client, which needs no slot for it.
      slot.release();
      buffering?.body?.release();
    }
    observer.forwarded(outcome, (clock.nowMs() - startedMs) / 1000);
    if (outcome !== 'ok' && outcome !== 'client_aborted' && outcome !== 'body_too_large') {
      this.#failures.warn(outcome, { method: req.method, url: req.url }, `upstream request failed: ${outcome}`);
    }
    if (decidedEpochMs !== null) this.#recorder.forwarded(req, res, request, context, decidedEpochMs);
  }

  /**
   * Receives the request body in full, for a buffered exchange; 'answered'
   * when the body was refused (413/503) or the client left.
   */
  async #receiveBody(req: IncomingMessage, res: ServerResponse, logAnswer: AnswerLogger): Promise<ForwardBuffering | 'answered'> {
    const { buffering } = this.#parts();
    const receipt = await buffering.receiveBody(req, this.#limits().maxBodyBytes);
    if (receipt.kind === 'refused') {
      logAnswer(receipt.reason === 'too_large' || receipt.reason === 'needs_disk' ? 413 : 503, `body:${receipt.reason}`);
      writeBodyRefusal(res, receipt.reason);
    }
    if (receipt.kind === 'refused' || receipt.kind === 'client_gone') return 'answered';
    const body = receipt.kind === 'received' ? receipt.body : null;
    // However the exchange ends (refused in the queue, client gone), the body's buffer goes with it.
    if (body !== null) res.once('close', () => body.release());
    return { body, response: buffering.bufferResponse };
  }

  /**
   * Waits for an upstream slot for `request`; null when none was given (the
   * client left, or it was refused: then answered 503 here, through `respond`).
   */
  async #admit(request: RequestFacts, connection: ServerResponse | Duplex, slots: Admission, logAnswer: AnswerLogger): Promise<Slot | null> {
    const { observer, clock } = this.#parts();
    const slot = slots.tryAcquire(request.client.ip);
    if (slot !== null) return slot;
    // A client gone already would never fire 'close' again: don't let it wait out the timeout.
    if ('closed' in connection && connection.closed) return null;
    if (connection.destroyed) return null;
    const abort = new AbortController();
    const onClose = () => abort.abort();
    connection.once('close', onClose);
    const granted: Slot | SlotRefusal = await slots.wait(request.client.ip, abort.signal);
    connection.off('close', onClose);
    if (typeof granted !== 'string') return granted;
    if (granted !== 'cancelled') {
      observer.notAdmitted(request, granted, clock.nowMs());
      logAnswer(503, `busy:${granted}`);
      // An HTTP/2 stream's response is no http.ServerResponse but answers like one; only an upgrade's raw socket gets raw bytes.
      if (connection instanceof http.ServerResponse || isHttp2(connection)) writePlainResponse(connection as unknown as ServerResponse, 503, 'Server busy, try again shortly', { 'retry-after': '1' });
      else refuse(connection, 503, 'Service Unavailable');
    }
    return null;
  }

  /**
   * Cluster mode: a request the node's own buckets admitted also pays the
   * shared ones before it goes on (the store bounds the wait by
   * `store.timeout`; unavailable keeps the local decision). A decision
   * without shared takes returns as it is, so the caller need not await it.
   */
  #settled(request: RequestFacts, decision: Decision): Decision | Promise<Decision> {
    const shared = this.#parts().sharedStore;
    if (decision.action !== 'allow' || decision.shared === undefined || shared === undefined) return decision;
    return shared.take(decision.shared.take).then((outcome) => this.#parts().engine.settleShared(request, decision, outcome, this.#parts().clock.nowMs()));
  }

  /** An HTTP/1.1 Upgrade (WebSocket): decided like any request, then spliced to the upstream under its own per-client cap. */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, context: ListenerContext): Promise<void> {
    // Node removed its error listener from this socket when the request upgraded.
    socket.on('error', onSocketError);
    const who = this.#identify(req, context);
    if (who === null) {
      socket.destroy();
      return;
    }
    const { request, origin } = requestFacts(req, who.client, context, this.#parts().engine.policy);
    const decidedMs = this.#parts().clock.nowMs();
    const decided = this.#settled(request, this.#parts().engine.decide(request, decidedMs));
    const decision = decided instanceof Promise ? await decided : decided;
    this.#parts().observer.decided(request, decision, decidedMs);
    // A raw socket: its answers have no body, so the line can be written at once.
    const logAnswer = (status: number, refusal: string) => this.#recorder.answered(req, null, request, context, decidedMs, status, refusal);
    if (decision.action !== 'allow') {
      const status = decision.status;
      logAnswer(status, decisionLogField(decision));
      const answer = () => refuse(socket, status, http.STATUS_CODES[status] ?? 'Refused');
      // An Upgrade header must not be a way around the tarpit.
      if (decision.action === 'ban') this.#tarpit.answer(socket, answer);
      else answer();
      return;
    }
    // The client may have left while the shared check was awaited: its socket
    // is gone, and the 'close' listeners added below would never run (the
    // per-client count of upgraded connections would hold it for good).
    if (socket.destroyed) return;
    if (origin === null || origin.target === '*') {
      logAnswer(400, 'reject:no upgrade of this target');
      refuse(socket, 400, 'Bad Request');
      return;
    }
    // A spliced connection lives for minutes and is no Apache worker doing
    // PHP, so once upgraded it holds no upstream slot (it would starve page
    // requests); it counts against its own per-client cap instead.
    const { upgraded } = this.#parts();
    const { route, slots } = this.#destinationOf(request, context);
    if (!upgraded.tryOpen(who.client.ip, socket)) {
      // A cap a client can fill is a cap whose excess is a strike.
      this.#parts().engine.strikeWithoutRequest(who.client, 'connections', this.#parts().clock.nowMs());
      logAnswer(503, 'busy:upgraded_per_client_max');
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    // The handshake itself is a request Apache works on (PHP answers it): it holds a slot like any other.
    const slot = await this.#admit(request, socket, slots, logAnswer);
    if (slot === null) return;
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
    try {
      await route.websockets.forward(req, socket, head, who.forwarding, origin);
    } finally {
      slot.release();
    }
  }

  /** Where a decided request goes: its site's upstream and cap, else its listener's upstream under the default cap. */
  #destinationOf(request: RequestFacts, context: ListenerContext): SiteDestination {
    return this.#parts().sites?.destinationOf(request.site, context.route) ?? { route: context.route, slots: this.#parts().slots };
  }

  #identify(req: IncomingMessage, context: ListenerContext): { client: ClientKey; forwarding: ForwardingIdentity } | null {
    const resolver = this.#parts().resolver;
    const peer = resolver.lookupPeer(req.socket.remoteAddress);
    if (peer === null) return null;
    const client = resolver.resolveFromPeer(peer, req.headers['x-forwarded-for']);
    return { client, forwarding: { clientIp: client.ip, peerIp: peer.key.ip, peerTrusted: peer.trusted, proto: context.proto, port: context.port } };
  }
}

/** Logs a request portcullis answers itself (see AccessLogRecorder.answered): its status and `KIND:DETAIL`. */
type AnswerLogger = (status: number, refusal: string) => void;

/** Whether the client of `res` is gone (an HTTP/2 response has no `closed` of its own: its stream does). */
function clientLeft(res: ServerResponse): boolean {
  if (isHttp2(res)) return (res as unknown as Http2ServerResponse).stream.destroyed;
  return res.closed || res.destroyed;
}
