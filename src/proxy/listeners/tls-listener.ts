import type http from 'node:http';
import type http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { listenOn, PROXY_PORT_ADVICE } from './listen-on.js';

/** What a TLS listener is built from. */
export interface TlsListenerParts {
  /** Certificates (an SNICallback), protocol versions, ciphers, ALPN: from the certificate store. */
  readonly secure: tls.TlsOptions;
  /** A handshake not done within this is cut (Node's own default is 120 s). */
  readonly handshakeTimeoutMs: number;
  /** Told of the TLS server once built, so certificate reloads and ticket-key rotation reach it. */
  attach?(server: tls.Server): void;
  /** Fed the TLS sockets that chose HTTP/1.1 (or no ALPN): the same kind of server as a plain listener's. */
  readonly http1: http.Server;
  /** Fed the TLS sockets that chose h2. */
  readonly http2: http2.Http2Server;
  /**
   * Called for every accepted TCP connection before any TLS work; false when
   * it was dealt with (closed, or held for a banned client): then no
   * handshake is ever spent on it.
   */
  admit(socket: net.Socket): boolean;
  /** A handshake that failed or timed out. */
  onHandshakeError(error: NodeJS.ErrnoException, socket: net.Socket): void;
  /** Open connections in total, at most (`connections.max`). */
  readonly maxConnections: number;
  /** A connection refused by `maxConnections`. */
  onDrop(): void;
}

/**
 * A TLS port: a plain TCP server accepts, `admit` decides (a banned address
 * is refused here, before the ClientHello is even read), and only then is the
 * socket handed to a TLS server; after the handshake ALPN sends it to the
 * HTTP/2 server or to an HTTP/1.1 server with the same timeouts as a plain
 * listener. Node's `http2.createSecureServer({ allowHTTP1 })` would do the
 * last two in one, but it applies no header timeout to its HTTP/1.1 side and
 * offers no hook before the handshake.
 */
export class TlsListener {
  readonly #gate: net.Server;
  readonly #tls: tls.Server;
  readonly #parts: TlsListenerParts;
  /** Accepted TCP sockets, so shutdown can cut them after its grace (destroying a TLS session does not always end the socket under it). */
  readonly #sockets = new Set<net.Socket>();

  constructor(parts: TlsListenerParts) {
    this.#parts = parts;
    this.#tls = tls.createServer({ ...parts.secure, handshakeTimeout: parts.handshakeTimeoutMs });
    parts.attach?.(this.#tls);
    this.#tls.on('secureConnection', (socket: tls.TLSSocket) => {
      socket.on('error', ignore);
      if (socket.alpnProtocol === 'h2') parts.http2.emit('connection', socket);
      else parts.http1.emit('connection', socket);
    });
    this.#tls.on('tlsClientError', (error: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      parts.onHandshakeError(error, socket as unknown as net.Socket);
      socket.destroy();
    });
    this.#gate = net.createServer((socket) => {
      socket.on('error', ignore);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      if (!parts.admit(socket)) return;
      this.#tls.emit('connection', socket);
    });
    this.#gate.maxConnections = parts.maxConnections;
    this.#gate.on('drop', () => parts.onDrop());
  }

  /** Applies a reloaded total connection cap. */
  set maxConnections(max: number) {
    this.#gate.maxConnections = max;
  }

  /** Swaps certificates and TLS settings for new handshakes (open connections keep theirs). */
  setSecureContext(secure: tls.TlsOptions): void {
    this.#tls.setSecureContext(secure);
  }

  /** Sets the keys session tickets are encrypted with (rotated by the certificate store). */
  setTicketKeys(keys: Buffer): void {
    this.#tls.setTicketKeys(keys);
  }

  /** Starts listening; resolves with the bound address. */
  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#gate, host, port, '(TLS)', PROXY_PORT_ADVICE);
  }

  /** Cuts every connection this port accepted (after shutdown's grace). */
  destroyAll(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  /** Stops accepting; the HTTP servers it feeds close their own connections. */
  close(): Promise<void> {
    // The TLS server never listened; its 'close' lets go of what attach() hooked to it.
    this.#tls.emit('close');
    return new Promise((resolve) => this.#gate.close(() => resolve()));
  }
}

/** Resets are a client's normal behaviour: never a crash. */
function ignore(): void {}
