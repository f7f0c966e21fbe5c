import http from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Clock } from '../../core/clock.js';
import type { DecisionEngine } from '../../engine/decision-engine.js';
import type { ClientResolver } from '../../identity/client-resolver.js';
import type { ConnectionMetrics } from '../../metrics/connection-metrics.js';
import type { BanTarpit } from '../ban-tarpit.js';
import type { ClientConnections } from '../client-connections.js';
import { handshakeFailureReason } from './handshake-failure.js';
import type { HandshakeLimiter } from './handshake-limiter.js';

/** What the gate asks, read afresh per connection: a reload may swap the resolver. */
export interface ConnectionGateParts {
  readonly resolver: ClientResolver;
  readonly connections: ClientConnections;
  readonly engine: DecisionEngine;
  readonly clock: Clock;
  readonly connectionMetrics: ConnectionMetrics;
}

/** Refusals a peer earns before any request could be decided. */
export type ConnectionStrike = 'client_timeout' | 'malformed' | 'http2_abuse';

/**
 * Every listener's connections pass here before any TLS or HTTP work, and
 * come back here when they fail before a request could be decided (bytes
 * that are no HTTP, headers never finished, a TLS handshake left to time
 * out): each of those is a strike, so a client that only ever does them
 * still earns a ban. Trusted proxies are never struck.
 */
export class ConnectionGate {
  readonly #parts: () => ConnectionGateParts;
  readonly #perClientMax: () => number;
  readonly #tarpit: BanTarpit;
  readonly #handshakes: HandshakeLimiter;

  /** `perClientMax`: `connections.per_client_max`, read per connection so a reload applies to the next one. */
  constructor(parts: () => ConnectionGateParts, perClientMax: () => number, tarpit: BanTarpit, handshakes: HandshakeLimiter) {
    this.#parts = parts;
    this.#perClientMax = perClientMax;
    this.#tarpit = tarpit;
    this.#handshakes = handshakes;
  }

  /**
   * Admission of a new TCP connection: the per-client cap (a strike past it;
   * trusted proxies exempt) and, on TLS ports (`refuseBanned`), bans: a
   * banned client's socket is held for the tarpit and closed, so it can
   * neither cost a handshake nor reconnect in a tight loop; past
   * `connections.tls_handshakes` the socket is closed before its handshake
   * (a strike). False when the socket was dealt with here.
   */
  admit(socket: Socket, refuseBanned: boolean): boolean {
    // Node's own listener goes when a request upgrades the socket, and a
    // reset then would be an unhandled 'error' that ends the process. This
    // one stays for the socket's life, in every phase.
    socket.on('error', onSocketError);
    const { resolver, connections, engine, clock, connectionMetrics } = this.#parts();
    const peer = resolver.lookupPeer(socket.remoteAddress);
    if (peer === null) {
      socket.destroy();
      return false;
    }
    if (refuseBanned && !peer.trusted && engine.banOf(peer.key, clock.nowMs()) !== null) {
      socket.pause();
      connectionMetrics.countRefused('banned');
      this.#tarpit.answer(socket, () => socket.destroy());
      return false;
    }
    if (!peer.trusted && connections.openFor(peer.key.ip) >= this.#perClientMax()) {
      socket.destroy();
      connectionMetrics.countRefused('per_client_max');
      engine.strikeWithoutRequest(peer.key, 'connections', clock.nowMs());
      return false;
    }
    if (refuseBanned && !peer.trusted && !this.#handshakes.tryTake(peer.key.ip, clock.nowMs())) {
      socket.destroy();
      connectionMetrics.countRefused('tls_handshakes');
      engine.strikeWithoutRequest(peer.key, 'tls_handshakes', clock.nowMs());
      return false;
    }
    connections.track(socket, peer.key);
    return true;
  }

  /** Node's `clientError`: malformed requests and header timeouts are answered if the socket still can be, never a crash. */
  clientError(error: NodeJS.ErrnoException, socket: Duplex): void {
    if (error.code !== 'ECONNRESET') this.strike((socket as Socket).remoteAddress, error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'client_timeout' : 'malformed');
    if (socket.writable && error.code !== 'ECONNRESET') {
      const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    } else {
      socket.destroy();
    }
  }

  /** A TLS handshake that failed: counted by reason, and a strike when the client let it time out. */
  handshakeFailed(error: NodeJS.ErrnoException, socket: Socket): void {
    const reason = handshakeFailureReason(error);
    this.#parts().connectionMetrics.countHandshakeFailure(reason);
    if (reason === 'timeout') this.strike(socket.remoteAddress, 'client_timeout');
  }

  /** A strike for a peer known by address (a socket already destroyed no longer tells it); never for a trusted proxy. */
  strike(peerAddress: string | undefined, rule: ConnectionStrike): void {
    const { resolver, engine, clock } = this.#parts();
    const peer = resolver.lookupPeer(peerAddress);
    if (peer !== null && !peer.trusted) engine.strikeWithoutRequest(peer.key, rule, clock.nowMs());
  }
}

/** Resets and timeouts are a client's normal behaviour: nothing to log, and never a crash. */
export function onSocketError(): void {}
