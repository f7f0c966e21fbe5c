import type http from 'node:http';
import type tls from 'node:tls';
import type { AddressInfo, Socket } from 'node:net';
import type { TimerHandle } from '../core/timers.js';
import { PortcullisError } from '../core/errors.js';
import type { ClientResolver } from '../identity/client-resolver.js';
import { AccessLogRecorder } from './access-log-recorder.js';
import { BanTarpit } from './ban-tarpit.js';
import { ConnectionGate } from './listeners/connection-gate.js';
import { HandshakeLimiter } from './listeners/handshake-limiter.js';
import { applyTimeouts, createHttpServer } from './listeners/http-server-factory.js';
import { createHttp2Server, type Http2Limits, type Http2ServerHandle } from './listeners/http2-server.js';
import { listenOn, PROXY_PORT_ADVICE } from './listeners/listen-on.js';
import type { ListenerContext, ListenerSpec } from './listeners/listener-spec.js';
import { TlsListener } from './listeners/tls-listener.js';
import type { ProxyServerLimits, ProxyServerParts, TlsSetup } from './proxy-server-parts.js';
import { RequestHandler } from './request-handler.js';

export type { ProxyServerLimits, ProxyServerParts, TlsSetup } from './proxy-server-parts.js';

/**
 * The shell around the engine: binds the listeners (plain, TLS with HTTP/1.1
 * and HTTP/2), passes their connections through the ConnectionGate and their
 * requests to the RequestHandler, applies reloaded limits and certificates,
 * and shuts down gracefully.
 */
export class ProxyServer {
  #parts: ProxyServerParts;
  #limits: ProxyServerLimits;
  /** Every HTTP/1.1 server (plain listeners' and TLS listeners' HTTP/1.1 side), for timeouts and shutdown. */
  readonly #httpServers: http.Server[] = [];
  readonly #http2Servers: Http2ServerHandle[] = [];
  readonly #tlsListeners: TlsListener[] = [];
  /** What a plain listener binds; TLS listeners bind their TlsListener. */
  readonly #listening: http.Server[] = [];
  readonly #tarpit: BanTarpit;
  readonly #handshakes: HandshakeLimiter;
  readonly #gate: ConnectionGate;
  readonly #handler: RequestHandler;

  constructor(parts: ProxyServerParts, limits: ProxyServerLimits) {
    this.#parts = parts;
    this.#limits = limits;
    this.#tarpit = new BanTarpit(limits.tarpitMs, limits.tarpitMax, parts.timers);
    this.#handshakes = new HandshakeLimiter(limits.tlsHandshakes);
    this.#gate = new ConnectionGate(() => this.#parts, () => this.#limits.connectionsPerClientMax, this.#tarpit, this.#handshakes);
    const recorder = new AccessLogRecorder(parts.accessLog, parts.wall, parts.clock, parts.logger);
    this.#handler = new RequestHandler(() => this.#parts, () => this.#limits, this.#tarpit, recorder);
  }

  /** Binds one listener of the policy; resolves with its address (port 0 gets a free port). */
  async listen(spec: ListenerSpec, tlsSetup?: TlsSetup): Promise<AddressInfo> {
    const context: ListenerContext = { proto: spec.tls ? 'https' : 'http', port: spec.port, redirectHttps: spec.redirectHttps, route: spec.route };
    const http1 = createHttpServer(this.#limits, {
      request: (req, res) => void this.#handler.handle(req, res, context).catch((error: unknown) => this.#handler.internalError(error, res)),
      upgrade: (req, socket, head) => void this.#handler.upgrade(req, socket, head, context).catch((error: unknown) => this.#handler.internalError(error, socket)),
      clientError: (error, socket) => this.#gate.clientError(error, socket),
    }, spec.tls);
    this.#httpServers.push(http1);
    if (!spec.tls) {
      http1.maxConnections = this.#limits.connectionsMax;
      http1.on('connection', (socket: Socket) => {
        if (!this.#gate.admit(socket, false)) socket.destroy();
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
    const http2Server = createHttp2Server(this.#http2Limits(), (req, res) => void this.#handler.handle(req, res, context).catch((error: unknown) => this.#handler.internalError(error, res)), {
      onAbuse: (peerAddress, kind) => {
        this.#parts.connectionMetrics.countHttp2Abuse(kind);
        this.#gate.strike(peerAddress, 'http2_abuse');
      },
      onClientTimeout: (peerAddress) => this.#gate.strike(peerAddress, 'client_timeout'),
    }, this.#parts);
    this.#http2Servers.push(http2Server);
    const listener = new TlsListener({
      secure: tlsSetup.secure,
      handshakeTimeoutMs: tlsSetup.handshakeTimeoutMs,
      ...(tlsSetup.attach ? { attach: (server: tls.Server) => tlsSetup.attach?.(server) } : {}),
      http1,
      http2: http2Server.server,
      admit: (socket) => this.#gate.admit(socket, true),
      onHandshakeError: (error, socket) => this.#gate.handshakeFailed(error, socket),
      maxConnections: this.#limits.connectionsMax,
      onDrop: () => this.#parts.connectionMetrics.countRefused('max'),
    });
    this.#tlsListeners.push(listener);
    const address = await listener.listen(spec.host, spec.port);
    context.port = address.port;
    return address;
  }

  #http2Limits(): Http2Limits {
    return { idleTimeoutMs: this.#limits.keepAliveTimeoutMs, requestTimeoutMs: this.#limits.requestTimeoutMs };
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
    for (const socket of this.#handler.upgraded) socket.destroy();
    await closed;
  }
}
