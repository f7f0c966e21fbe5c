import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type tls from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock, WallClock } from '../core/clock.js';
import type { TimerHandle, Timers } from '../core/timers.js';
import { PortcullisError } from '../core/errors.js';
import { RateLimitedLog } from '../core/rate-limited-log.js';
import type { Decision } from '../engine/decision.js';
import type { DecisionEngine, RequestFacts } from '../engine/decision-engine.js';
import type { SharedBucketStore } from '../limiter/shared-bucket-store.js';
import type { ClientKey } from '../identity/client-key.js';
import type { ConnectionMetrics } from '../metrics/connection-metrics.js';
import type { ClientResolver } from '../identity/client-resolver.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import { toOriginForm, type OriginFormTarget } from '../policy/origin-form.js';
import { hostApacheUses } from '../policy/request-host.js';
import type { Admission, SiteDestination, SiteRouting } from './site-routing.js';
import type { CompiledSite } from '../policy/compiled-site.js';
import type { ClientConnections } from './client-connections.js';
import type { AccessLog, AccessLogEntry } from './access-log.js';
import { BanTarpit } from './ban-tarpit.js';
import type { RequestObserver } from './request-observer.js';
import { bodyBytesOf, countBodyBytes } from './response-body-counter.js';
import { writeBodyRefusal } from './buffering/body-refusal.js';
import type { Buffering } from './buffering/buffering.js';
import { hasRequestBody } from './request-body-presence.js';
import type { ForwardBuffering, ForwardOutcome } from './forwarder.js';
import { writePlainResponse } from './plain-response.js';
import { writeRefusal } from './refusal-response.js';
import { decisionLogField } from './refusal-log-field.js';
import { findFramingProblem } from './request-framing.js';
import { isAcmeChallenge } from '../policy/acme-challenge.js';
import { writeHttpsRedirect } from './https-redirect.js';
import { handshakeFailureReason } from './listeners/handshake-failure.js';
import type { Slot, SlotRefusal, UpstreamSlots } from './upstream-slots.js';
import type { ForwardingIdentity } from './upstream-headers.js';
import { refuse } from './websocket-forwarder.js';
import { applyTimeouts, createHttpServer } from './listeners/http-server-factory.js';
import type { ListenerContext, ListenerSpec } from './listeners/listener-spec.js';
import { TlsListener } from './listeners/tls-listener.js';
import { listenOn, PROXY_PORT_ADVICE } from './listeners/listen-on.js';
import { HandshakeLimiter, type HandshakeLimit } from './listeners/handshake-limiter.js';
import { createHttp2Server, endSession, isHttp2, type Http2Limits, type Http2ServerHandle } from './listeners/http2-server.js';
import type { UpgradedConnections } from './upgraded-connections.js';

/** What the proxy server is assembled from; see `createPortcullis` for the real wiring. */
export interface ProxyServerParts {
  readonly engine: DecisionEngine;
  readonly resolver: ClientResolver;
  readonly slots: UpstreamSlots;
  /** Request bodies received and responses read ahead of slow clients (`buffering:`). */
  readonly buffering: Buffering;
  readonly connections: ClientConnections;
  /** Spliced upgrade connections per client, capped apart from upstream slots. */
  readonly upgraded: UpgradedConnections;
  readonly observer: RequestObserver;
  readonly connectionMetrics: ConnectionMetrics;
  /** Apache `combined` log of forwarded requests (and of refused ones, with `access_log_refused`); null: none. */
  readonly accessLog: AccessLog | null;
  /** Per-site upstreams and caps (`sites:`); absent: every request goes where its listener sends it, under `slots`. */
  readonly sites?: SiteRouting;
  /** Cluster mode: the buckets every node shares, asked after the node's own admitted a request; absent: this node alone. */
  readonly sharedStore?: SharedBucketStore;
  readonly clock: Clock;
  /** Wall-clock time, for the access log's `%t`. */
  readonly wall: WallClock;
  readonly timers: Timers;
  readonly logger: Logger;
}

/** What a TLS listener needs besides its ListenerSpec: from the certificate store and `timeouts.tls_handshake`. */
export interface TlsSetup {
  readonly secure: tls.TlsOptions;
  readonly handshakeTimeoutMs: number;
  /** Told of each TLS server built, so certificate reloads and ticket-key rotation reach it. */
  attach?(server: tls.Server): void;
}

/** Client-side connection limits, from `timeouts` and `request` in the policy. */
export interface ProxyServerLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxBodyBytes: number;
  /** How long a banned client's answer is held; 0: at once. */
  readonly tarpitMs: number;
  /** Answers held at once, at most. */
  readonly tarpitMax: number;
  /** Open connections per untrusted peer address (`connections.per_client_max`). */
  readonly connectionsPerClientMax: number;
  /** Open client connections in total (`connections.max`). */
  readonly connectionsMax: number;
  /** New connections to a TLS port per untrusted peer address (`connections.tls_handshakes`). */
  readonly tlsHandshakes: HandshakeLimit;
}


/**
 * The shell around the engine: turns each HTTP request into facts, asks the
 * engine, and either answers the refusal itself or waits for an upstream slot
 * and forwards. All policy lives in the engine; all transport in the forwarder.
 */
export class ProxyServer {
  #parts: ProxyServerParts;
  /** Every HTTP/1.1 server (plain listeners' and TLS listeners' HTTP/1.1 side), for timeouts and shutdown. */
  readonly #httpServers: http.Server[] = [];
  readonly #http2Servers: Http2ServerHandle[] = [];
  readonly #tlsListeners: TlsListener[] = [];
  /** What a plain listener binds; TLS listeners bind their TlsListener. */
  readonly #listening: http.Server[] = [];
  /** Upgraded sockets leave Node's HTTP connection tracking; kept here so shutdown can end them. */
  readonly #upgraded = new Set<Duplex>();
  readonly #failures: RateLimitedLog;
  readonly #tarpit: BanTarpit;
  readonly #handshakes: HandshakeLimiter;
  #limits: ProxyServerLimits;

  constructor(parts: ProxyServerParts, limits: ProxyServerLimits) {
    this.#parts = parts;
    this.#limits = limits;
    this.#failures = new RateLimitedLog(parts.logger, parts.clock);
    this.#tarpit = new BanTarpit(limits.tarpitMs, limits.tarpitMax, parts.timers);
    this.#handshakes = new HandshakeLimiter(limits.tlsHandshakes);
  }

  /** Binds one listener of the policy; resolves with its address (port 0 gets a free port). */
  async listen(spec: ListenerSpec, tlsSetup?: TlsSetup): Promise<AddressInfo> {
    const context: ListenerContext = { proto: spec.tls ? 'https' : 'http', port: spec.port, redirectHttps: spec.redirectHttps, route: spec.route };
    const http1 = createHttpServer(this.#limits, {
      request: (req, res) => void this.#handle(req, res, context).catch((error: unknown) => this.#internalError(error, res)),
      upgrade: (req, socket, head) => void this.#upgrade(req, socket, head, context).catch((error: unknown) => this.#internalError(error, socket)),
      clientError: (error, socket) => this.#clientError(error, socket),
    }, spec.tls);
    this.#httpServers.push(http1);
    if (!spec.tls) {
      http1.maxConnections = this.#limits.connectionsMax;
      http1.on('connection', (socket: Socket) => {
        if (!this.#admitConnection(socket, false)) socket.destroy();
      });
      // Past server.maxConnections Node closes new connections itself; a full
      // total cap says nothing about who is to blame, so nobody is struck.
      http1.on('drop', () => this.#parts.connectionMetrics.countRefused('max'));
      const address = await listenOn(http1, spec.host, spec.port, '(HTTP)', PROXY_PORT_ADVICE);
      this.#listening.push(http1);
      context.port = address.port;
      return address;
    }
    if (tlsSetup === undefined) throw new PortcullisError('PC_ERR_LISTEN', `listener ${spec.host}:${spec.port} has tls: true but no certificates are configured; add tls.certificates or tls.certbot_live`);
    const http2Server = createHttp2Server(this.#http2Limits(), (req, res) => void this.#handle(req, res, context).catch((error: unknown) => this.#internalError(error, res)), {
      onAbuse: (peerAddress, kind) => {
        this.#parts.connectionMetrics.countHttp2Abuse(kind);
        this.#strikeAddress(peerAddress, 'http2_abuse');
      },
      onClientTimeout: (peerAddress) => this.#strikeAddress(peerAddress, 'client_timeout'),
    }, this.#parts);
    this.#http2Servers.push(http2Server);
    const listener = new TlsListener({
      secure: tlsSetup.secure,
      handshakeTimeoutMs: tlsSetup.handshakeTimeoutMs,
      ...(tlsSetup.attach ? { attach: (server: tls.Server) => tlsSetup.attach?.(server) } : {}),
      http1,
      http2: http2Server.server,
      admit: (socket) => this.#admitConnection(socket, true),
      onHandshakeError: (error, socket) => this.#handshakeFailed(error, socket),
      maxConnections: this.#limits.connectionsMax,
      onDrop: () => this.#parts.connectionMetrics.countRefused('max'),
    });
    this.#tlsListeners.push(listener);
    const address = await listener.listen(spec.host, spec.port);
    context.port = address.port;
    return address;
  }

  /**
   * Admission of a new TCP connection, before any TLS or HTTP work: the
   * per-client cap (a strike past it; trusted proxies exempt) and, on TLS
   * ports, bans: a banned client's socket is held for the tarpit and closed,
   * so it can neither cost a handshake nor reconnect in a tight loop; past
   * `connections.tls_handshakes` the socket is closed before its handshake
   * (a strike). False when the socket was dealt with here.
   */
  #admitConnection(socket: Socket, refuseBanned: boolean): boolean {
    // Node's own listener goes when a request upgrades the socket, and a
    // reset then would be an unhandled 'error' that ends the process. This
    // one stays for the socket's life, in every phase.
    socket.on('error', onSocketError);
    // this.#parts, not the constructor's: a reload may have swapped the resolver.
    const { resolver, connections, engine, clock } = this.#parts;
    const peer = resolver.lookupPeer(socket.remoteAddress);
    if (peer === null) {
      socket.destroy();
      return false;
    }
    if (refuseBanned && !peer.trusted && engine.banOf(peer.key, clock.nowMs()) !== null) {
      socket.pause();
      this.#parts.connectionMetrics.countRefused('banned');
      this.#tarpit.answer(socket, () => socket.destroy());
      return false;
    }
    if (!peer.trusted && connections.openFor(peer.key.ip) >= this.#limits.connectionsPerClientMax) {
      socket.destroy();
      this.#parts.connectionMetrics.countRefused('per_client_max');
      engine.strikeWithoutRequest(peer.key, 'connections', clock.nowMs());
      return false;
    }
    if (refuseBanned && !peer.trusted && !this.#handshakes.tryTake(peer.key.ip, clock.nowMs())) {
      socket.destroy();
      this.#parts.connectionMetrics.countRefused('tls_handshakes');
      engine.strikeWithoutRequest(peer.key, 'tls_handshakes', clock.nowMs());
      return false;
    }
    connections.track(socket, peer.key);
    return true;
  }

  #clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    // Malformed requests and header timeouts: answer if the socket still can, never crash.
    if (error.code !== 'ECONNRESET') this.#strikePeer(socket, error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'client_timeout' : 'malformed');
    if (socket.writable && error.code !== 'ECONNRESET') {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else {
      socket.destroy();
    }
  }

  /** A TLS handshake that failed: counted by reason, and a strike when the client let it time out. */
  #handshakeFailed(error: NodeJS.ErrnoException, socket: Socket): void {
    const reason = handshakeFailureReason(error);
    this.#parts.connectionMetrics.countHandshakeFailure(reason);
    if (reason === 'timeout') this.#strikePeer(socket, 'client_timeout');
  }

  #http2Limits(): Http2Limits {
    return { idleTimeoutMs: this.#limits.keepAliveTimeoutMs, requestTimeoutMs: this.#limits.requestTimeoutMs };
  }

  /** A strike for the peer of a connection that failed before a request could be decided (never for a trusted proxy). */
  #strikePeer(socket: Duplex, rule: 'client_timeout' | 'malformed'): void {
    this.#strikeAddress((socket as Socket).remoteAddress, rule);
  }

  /** A strike for a peer known by address (a socket already destroyed no longer tells it). */
  #strikeAddress(peerAddress: string | undefined, rule: 'client_timeout' | 'malformed' | 'http2_abuse'): void {
    const peer = this.#parts.resolver.lookupPeer(peerAddress);
    if (peer !== null && !peer.trusted) this.#parts.engine.strikeWithoutRequest(peer.key, rule, this.#parts.clock.nowMs());
  }

  /** Swaps the client resolver (policy reload: trusted proxies or prefix lengths changed). */
  setResolver(resolver: ClientResolver): void {
    this.#parts = { ...this.#parts, resolver };
  }

  /** Applies new client-side limits (policy reload); existing connections keep theirs. */
  setLimits(limits: ProxyServerLimits): void {
    this.#limits = limits;
    for (const server of this.#httpServers) applyTimeouts(server, limits);
    for (const server of this.#listening) server.maxConnections = limits.connectionsMax;
    for (const listener of this.#tlsListeners) listener.maxConnections = limits.connectionsMax;
    for (const server of this.#http2Servers) server.configure(this.#http2Limits());
    this.#tarpit.configure(limits.tarpitMs, limits.tarpitMax);
    this.#handshakes.configure(limits.tlsHandshakes);
  }

  /** Swaps certificates for new TLS handshakes on every TLS listener. */
  setSecureContext(secure: tls.TlsOptions): void {
    for (const listener of this.#tlsListeners) listener.setSecureContext(secure);
  }

  /** Banned clients' connections whose answer the tarpit is holding now. */
  get tarpitHeld(): number {
    return this.#tarpit.held;
  }

  /**
   * Stops accepting, lets in-flight requests finish for up to `graceMs`, then
   * cuts what is left. Idle keep-alive connections are closed at once.
   */
  async close(graceMs: number): Promise<void> {
    const closed = Promise.all([
      ...this.#listening.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      ...this.#tlsListeners.map((listener) => listener.close()),
    ]);
    const closeIdle = () => {
      for (const server of this.#httpServers) server.closeIdleConnections();
    };
    closeIdle();
    for (const server of this.#http2Servers) server.drain();
    // Connections that were busy become idle as their responses finish.
    const { timers } = this.#parts;
    const sweep = timers.setInterval(closeIdle, 100);
    let grace: TimerHandle = null;
    const deadline = new Promise<void>((resolve) => {
      grace = timers.setTimeout(resolve, graceMs);
    });
    await Promise.race([closed, deadline]);
    timers.clearInterval(sweep);
    timers.clearTimeout(grace);
    for (const server of this.#httpServers) {
      server.closeAllConnections();
      // Servers fed by a TLS listener never listened: stop their timeout checks.
      if (!server.listening) server.close(() => {});
    }
    for (const server of this.#http2Servers) server.destroyAll();
    for (const listener of this.#tlsListeners) listener.destroyAll();
    for (const socket of this.#upgraded) socket.destroy();
    await closed;
  }

  /**
   * A bug in the request path costs that request a 500 (or its connection),
   * never the process: the front door of every site must not fall with one
   * request. Logged with PC_ERR_INTERNAL, like the admin API's own.
   */
  #internalError(error: unknown, connection: ServerResponse | Duplex): void {
    this.#parts.logger.error({ err: error, code: 'PC_ERR_INTERNAL' }, 'internal error while handling a request: answered 500 (please report this line)');
    if (!('writeHead' in connection)) {
      connection.destroy();
      return;
    }
    if (connection.headersSent || connection.destroyed) connection.destroy();
    else writePlainResponse(connection, 500, 'Internal error', { connection: 'close' });
  }

  async #handle(req: IncomingMessage, res: ServerResponse, context: ListenerContext): Promise<void> {
    const { engine, clock, observer } = this.#parts;
    const who = this.#identify(req, context);
    if (who === null) {
      res.destroy();
      return;
    }
    const { request, origin } = facts(req, who.client, context, engine.policy);
    const decidedMs = clock.nowMs();
    const decided = this.#settled(request, engine.decide(request, decidedMs));
    const decision = decided instanceof Promise ? await decided : decided;
    observer.decided(request, decision, decidedMs);
    // Called before the answer is written, so its body bytes are counted.
    const logAnswer = (status: number, refusal: string) => this.#logAnswer(req, res, request, context, decidedMs, status, refusal);
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
    if (length > this.#limits.maxBodyBytes) {
      logAnswer(413, 'body:too_large');
      writePlainResponse(res, 413, 'Request body too large', { connection: 'close' });
      return;
    }

    // The body is received before a slot is taken: a client that sends it slowly holds no Apache worker.
    const buffered = this.#parts.buffering;
    const buffering =
      !buffered.buffers(origin.target) ? null
      : hasRequestBody(req) ? await this.#receiveBody(req, res, logAnswer)
      : buffered.withoutBody;
    if (buffering === 'answered') return;
    const { route, slots } = this.#destinationOf(request, context);
    const slot = await this.#admit(request, res, slots, logAnswer);
    if (slot === null) return;
    const startedMs = clock.nowMs();
    const accessLog = this.#parts.accessLog;
    const arrivedEpochMs = accessLog === null ? 0 : this.#parts.wall.epochMs() - (startedMs - decidedMs);
    if (accessLog !== null) countBodyBytes(res);
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
    if (accessLog !== null) {
      // Logged once the client has it all (or left), so the byte count is what it received.
      await responseClosed(res);
      accessLog.record(logEntry(req, request, context, arrivedEpochMs, res.statusCode, bodyBytesOf(res)));
    }
  }

  /**
   * With `access_log_refused`: a line for a request portcullis answers
   * itself, stamped with when it was decided, as a forwarded one is. Call it
   * before the answer is written: the line is written once the answer is out
   * (or the client gone), with the body bytes the client was sent; the status
   * is the one sent, or the one meant when the client left first (a held ban).
   * `res` null: a raw socket (upgrade) whose answer has no body, logged at once.
   */
  #logAnswer(req: IncomingMessage, res: ServerResponse | null, request: RequestFacts, context: ListenerContext, decidedMs: number, status: number, refusal: string): void {
    const { accessLog, wall, clock } = this.#parts;
    if (accessLog === null || !accessLog.refusals) return;
    const epochMs = wall.epochMs() - (clock.nowMs() - decidedMs);
    if (res === null) {
      accessLog.record({ ...logEntry(req, request, context, epochMs, status, 0), refusal });
      return;
    }
    countBodyBytes(res);
    void responseClosed(res).then(() => accessLog.record({ ...logEntry(req, request, context, epochMs, res.headersSent ? res.statusCode : status, bodyBytesOf(res)), refusal }));
  }

  /**
   * Receives the request body in full, for a buffered exchange; 'answered'
   * when the body was refused (413/503) or the client left.
   */
  async #receiveBody(req: IncomingMessage, res: ServerResponse, logAnswer: AnswerLogger): Promise<ForwardBuffering | 'answered'> {
    const { buffering } = this.#parts;
    const receipt = await buffering.receiveBody(req, this.#limits.maxBodyBytes);
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
    const { observer, clock } = this.#parts;
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
    const shared = this.#parts.sharedStore;
    if (decision.action !== 'allow' || decision.shared === undefined || shared === undefined) return decision;
    return shared.take(decision.shared.take).then((outcome) => this.#parts.engine.settleShared(request, decision, outcome, this.#parts.clock.nowMs()));
  }

  async #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, context: ListenerContext): Promise<void> {
    // Node removed its error listener from this socket when the request upgraded.
    socket.on('error', onSocketError);
    const who = this.#identify(req, context);
    if (who === null) {
      socket.destroy();
      return;
    }
    const { request, origin } = facts(req, who.client, context, this.#parts.engine.policy);
    const decidedMs = this.#parts.clock.nowMs();
    const decided = this.#settled(request, this.#parts.engine.decide(request, decidedMs));
    const decision = decided instanceof Promise ? await decided : decided;
    this.#parts.observer.decided(request, decision, decidedMs);
    // A raw socket: its answers have no body, so the line can be written at once.
    const logAnswer = (status: number, refusal: string) => this.#logAnswer(req, null, request, context, decidedMs, status, refusal);
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
    const { upgraded } = this.#parts;
    const { route, slots } = this.#destinationOf(request, context);
    if (!upgraded.tryOpen(who.client.ip, socket)) {
      // A cap a client can fill is a cap whose excess is a strike.
      this.#parts.engine.strikeWithoutRequest(who.client, 'connections', this.#parts.clock.nowMs());
      logAnswer(503, 'busy:upgraded_per_client_max');
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    // The handshake itself is a request Apache works on (PHP answers it): it holds a slot like any other.
    const slot = await this.#admit(request, socket, slots, logAnswer);
    if (slot === null) return;
    this.#upgraded.add(socket);
    socket.once('close', () => this.#upgraded.delete(socket));
    try {
      await route.websockets.forward(req, socket, head, who.forwarding, origin);
    } finally {
      slot.release();
    }
  }

  /** Where a decided request goes: its site's upstream and cap, else its listener's upstream under the default cap. */
  #destinationOf(request: RequestFacts, context: ListenerContext): SiteDestination {
    return this.#parts.sites?.destinationOf(request.site, context.route) ?? { route: context.route, slots: this.#parts.slots };
  }

  #identify(req: IncomingMessage, context: ListenerContext): { client: ClientKey; forwarding: ForwardingIdentity } | null {
    const resolver = this.#parts.resolver;
    const peer = resolver.lookupPeer(req.socket.remoteAddress);
    if (peer === null) return null;
    const client = resolver.resolveFromPeer(peer, req.headers['x-forwarded-for']);
    return { client, forwarding: { clientIp: client.ip, peerIp: peer.key.ip, peerTrusted: peer.trusted, proto: context.proto, port: context.port } };
  }
}

/** Logs a request portcullis answers itself (see `#logAnswer`): its status and `KIND:DETAIL`. */
type AnswerLogger = (status: number, refusal: string) => void;

/** The access-log facts of a request, for its `combined` line. */
function logEntry(req: IncomingMessage, request: RequestFacts, context: ListenerContext, epochMs: number, status: number, bytes: number): AccessLogEntry {
  return {
    clientIp: request.client.ip,
    epochMs,
    method: req.method as string,
    target: req.url as string,
    httpVersion: req.httpVersion,
    status,
    bytes,
    ...(req.headers.referer === undefined ? {} : { referer: req.headers.referer }),
    ...(req.headers['user-agent'] === undefined ? {} : { userAgent: req.headers['user-agent'] }),
    vhost: logVhost(request.site, req),
    port: context.port,
  };
}

/** Resolves when `res` is over: sent in full, or its connection gone. */
function responseClosed(res: ServerResponse): Promise<void> {
  return res.closed ? Promise.resolve() : new Promise((resolve) => res.once('close', () => resolve()));
}

/** Whether the client of `res` is gone (an HTTP/2 response has no `closed` of its own: its stream does). */
function clientLeft(res: ServerResponse): boolean {
  if (isHttp2(res)) return (res as unknown as Http2ServerResponse).stream.destroyed;
  return res.closed || res.destroyed;
}

/** Resets and timeouts are a client's normal behaviour: nothing to log, and never a crash. */
function onSocketError(): void {}

/**
 * The facts the engine decides on: the target as it will be forwarded
 * (origin-form, see toOriginForm), the site of the host Apache will choose
 * the vhost by (the one forwarded as Host), and what in the request's
 * framing Apache would refuse. A target toOriginForm cannot read goes to the
 * engine as sent, which refuses it (400, a strike).
 */
function facts(req: IncomingMessage, client: ClientKey, context: ListenerContext, policy: CompiledPolicy): { request: RequestFacts; origin: OriginFormTarget | null } {
  const raw = req.url as string;
  const origin = toOriginForm(raw);
  const malformed = findFramingProblem(req);
  const target = origin === null ? raw : origin.target;
  const host = hostApacheUses({ authority: origin?.authority ?? null, host: req.headers.host, h2Authority: req.headers[':authority'] as string | undefined });
  const request: RequestFacts = { client, method: req.method as string, target, site: policy.selectSite(host) };
  if (malformed !== null) return { request: { ...request, malformed }, origin };
  // certbot's webroot challenge must reach Apache over plain HTTP, past blocks and the redirect (never past limits).
  if (context.proto === 'http' && isAcmeChallenge(target)) return { request: { ...request, acmeChallenge: true }, origin };
  return { request, origin };
}

/** `%v` for the access log: the chosen site's first exact host name, else the host the client asked for (without port). */
function logVhost(site: CompiledSite | null | undefined, req: IncomingMessage): string | undefined {
  const named = site?.config?.hosts.find((host) => !host.startsWith('*'));
  if (named !== undefined) return named;
  const host = (req.headers.host ?? (req.headers[':authority'] as string | undefined))?.toLowerCase();
  return host === undefined ? undefined : host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0];
}


