import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Clock } from '../core/clock.js';
import { PortcullisError } from '../core/errors.js';
import { RateLimitedLog } from '../core/rate-limited-log.js';
import type { DecisionEngine } from '../engine/decision-engine.js';
import type { ClientKey } from '../identity/client-key.js';
import type { ClientResolver } from '../identity/client-resolver.js';
import type { ClientConnections } from './client-connections.js';
import type { AccessLog } from './access-log.js';
import { BanTarpit } from './ban-tarpit.js';
import type { RequestObserver } from './request-observer.js';
import { bodyBytesOf, countBodyBytes } from './response-body-counter.js';
import type { Forwarder } from './forwarder.js';
import { writePlainResponse } from './plain-response.js';
import { writeRefusal } from './refusal-response.js';
import type { UpstreamSlots } from './upstream-slots.js';
import type { ForwardingIdentity } from './upstream-headers.js';
import type { WebSocketForwarder } from './websocket-forwarder.js';

/** What the proxy server is assembled from; see `createPortcullis` for the real wiring. */
export interface ProxyServerParts {
  readonly engine: DecisionEngine;
  readonly resolver: ClientResolver;
  readonly slots: UpstreamSlots;
  readonly forwarder: Forwarder;
  readonly websockets: WebSocketForwarder;
  readonly connections: ClientConnections;
  readonly observer: RequestObserver;
  /** Apache `combined` log of forwarded requests; null: none. */
  readonly accessLog: AccessLog | null;
  readonly clock: Clock;
  readonly logger: Logger;
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
}

/**
 * The shell around the engine: turns each HTTP request into facts, asks the
 * engine, and either answers the refusal itself or waits for an upstream slot
 * and forwards. All policy lives in the engine; all transport in the forwarder.
 */
export class ProxyServer {
  readonly #server: http.Server;
  #parts: ProxyServerParts;
  /** Upgraded sockets leave Node's HTTP connection tracking; kept here so shutdown can end them. */
  readonly #upgraded = new Set<Duplex>();
  readonly #failures: RateLimitedLog;
  readonly #tarpit: BanTarpit;
  #limits: ProxyServerLimits;

  constructor(parts: ProxyServerParts, limits: ProxyServerLimits) {
    this.#parts = parts;
    this.#limits = limits;
    this.#failures = new RateLimitedLog(parts.logger, parts.clock);
    this.#tarpit = new BanTarpit(limits.tarpitMs, limits.tarpitMax);
    this.#server = http.createServer(
      {
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        // Node answers garbage with 400 and closes; nothing reaches Apache.
        requireHostHeader: true,
      },
      (req, res) => void this.#handle(req, res),
    );
    this.#server.on('connection', (socket: Socket) => {
      // this.#parts, not the constructor's: a reload may have swapped the resolver.
      const peer = this.#parts.resolver.lookupPeer(socket.remoteAddress);
      if (peer !== null) this.#parts.connections.track(socket, peer.key);
    });
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
    this.#server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      // Malformed requests and header timeouts: answer if the socket still can, never crash.
      if (socket.writable && error.code !== 'ECONNRESET') {
        const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
        socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      } else {
        socket.destroy();
      }
    });
  }

  /** The underlying Node server (for tests and for the admin API's statistics). */
  get server(): http.Server {
    return this.#server;
  }

  /** Starts listening; resolves with the bound address (port 0 gets a free port). */
  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error) =>
        reject(new PortcullisError('PC_ERR_LISTEN', `cannot listen on ${host}:${port}: ${error.message}; is another process using the port, or does it need privileges?`, { cause: error }));
      this.#server.once('error', onError);
      this.#server.listen(port, host, () => {
        this.#server.off('error', onError);
        resolve(this.#server.address() as AddressInfo);
      });
    });
  }

  /** Swaps the client resolver (policy reload: trusted proxies or prefix lengths changed). */
  setResolver(resolver: ClientResolver): void {
    this.#parts = { ...this.#parts, resolver };
  }

  /** Applies new client-side limits (policy reload); existing connections keep theirs. */
  setLimits(limits: ProxyServerLimits): void {
    this.#limits = limits;
    this.#server.headersTimeout = limits.headersTimeoutMs;
    this.#server.requestTimeout = limits.requestTimeoutMs;
    this.#server.keepAliveTimeout = limits.keepAliveTimeoutMs;
    this.#tarpit.configure(limits.tarpitMs, limits.tarpitMax);
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
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    // Connections that were busy become idle as their responses finish.
    const sweep = setInterval(() => this.#server.closeIdleConnections(), 100);
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([closed, deadline]);
    clearInterval(sweep);
    this.#server.closeAllConnections();
    for (const socket of this.#upgraded) socket.destroy();
    await closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { engine, slots, forwarder, clock, observer } = this.#parts;
    const who = this.#identify(req);
    if (who === null) {
      res.destroy();
      return;
    }
    const request = { client: who.client, method: req.method as string, target: req.url as string };
    const decidedMs = clock.nowMs();
    const decision = engine.decide(request, decidedMs);
    observer.decided(request, decision, decidedMs);
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
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > this.#limits.maxBodyBytes) {
      writePlainResponse(res, 413, 'Request body too large', { connection: 'close' });
      return;
    }

    let slot = slots.tryAcquire(who.client.ip);
    if (slot === null) {
      // A client gone already would never fire 'close' again: don't let it wait out the timeout.
      if (res.closed) return;
      const abort = new AbortController();
      const onClose = () => abort.abort();
      res.once('close', onClose);
      const granted = await slots.wait(who.client.ip, abort.signal);
      res.off('close', onClose);
      if (typeof granted === 'string') {
        if (granted !== 'cancelled') {
          observer.notAdmitted(request, granted, clock.nowMs());
          writePlainResponse(res, 503, 'Server busy, try again shortly', { 'retry-after': '1' });
        }
        return;
      }
      slot = granted;
    }
    const startedMs = clock.nowMs();
    const accessLog = this.#parts.accessLog;
    const arrivedEpochMs = accessLog === null ? 0 : Date.now() - (startedMs - decidedMs);
    if (accessLog !== null) countBodyBytes(res);
    try {
      const outcome = await forwarder.forward(req, res, who.forwarding);
      observer.forwarded(outcome, (clock.nowMs() - startedMs) / 1000);
      accessLog?.record({
        clientIp: who.client.ip,
        epochMs: arrivedEpochMs,
        method: req.method as string,
        target: req.url as string,
        httpVersion: req.httpVersion,
        status: res.statusCode,
        bytes: bodyBytesOf(res),
        ...(req.headers.referer === undefined ? {} : { referer: req.headers.referer }),
        ...(req.headers['user-agent'] === undefined ? {} : { userAgent: req.headers['user-agent'] }),
      });
      if (outcome !== 'ok' && outcome !== 'client_aborted' && outcome !== 'body_too_large') {
        this.#failures.warn(outcome, { method: req.method, url: req.url }, `upstream request failed: ${outcome}`);
      }
    } finally {
      slot.release();
    }
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const who = this.#identify(req);
    if (who === null) {
      socket.destroy();
      return;
    }
    const request = { client: who.client, method: req.method as string, target: req.url as string };
    const decidedMs = this.#parts.clock.nowMs();
    const decision = this.#parts.engine.decide(request, decidedMs);
    this.#parts.observer.decided(request, decision, decidedMs);
    if (decision.action !== 'allow') {
      const status = decision.status;
      const refuse = () => socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Refused'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      // An Upgrade header must not be a way around the tarpit.
      if (decision.action === 'ban') this.#tarpit.answer(socket, refuse);
      else refuse();
      return;
    }
    // A WebSocket lives for minutes and is not an Apache worker doing PHP, so it
    // does not hold an upstream slot (it would starve page requests if it did).
    this.#upgraded.add(socket);
    socket.once('close', () => this.#upgraded.delete(socket));
    this.#parts.websockets.forward(req, socket, head, who.forwarding);
  }

  #identify(req: IncomingMessage): { client: ClientKey; forwarding: ForwardingIdentity } | null {
    const resolver = this.#parts.resolver;
    const peer = resolver.lookupPeer(req.socket.remoteAddress);
    if (peer === null) return null;
    const client = resolver.resolveFromPeer(peer, req.headers['x-forwarded-for']);
    return { client, forwarding: { clientIp: client.ip, peerIp: peer.key.ip, peerTrusted: peer.trusted } };
  }
}
