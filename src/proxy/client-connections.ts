import type { Socket } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Ban } from '../escalation/ban.js';
import type { ClientKey } from '../identity/client-key.js';

interface PeerSockets {
  readonly key: ClientKey;
  readonly sockets: Set<Socket>;
}

/**
 * Open client connections by peer address, so a ban can close a flooder's
 * keep-alive sockets at once instead of waiting for its next request (a
 * fail2ban classic: the established flood carries on after the ban). Its size
 * is the number of open connections, which the server bounds.
 */
export class ClientConnections {
  readonly #byPeer = new Map<string, PeerSockets>();
  #size = 0;

  /** Remembers `socket` until it closes. */
  track(socket: Socket, key: ClientKey): void {
    let peer = this.#byPeer.get(key.ip);
    if (peer === undefined) {
      peer = { key, sockets: new Set() };
      this.#byPeer.set(key.ip, peer);
    }
    peer.sockets.add(socket);
    this.#size++;
    socket.once('close', () => {
      this.#size--;
      peer.sockets.delete(socket);
      if (peer.sockets.size === 0 && this.#byPeer.get(key.ip) === peer) this.#byPeer.delete(key.ip);
    });
  }

  /** Destroys every socket whose peer `ban` covers; returns how many. */
  closeCovered(ban: Ban): number {
    let closed = 0;
    const destroy = (peer: PeerSockets) => {
      for (const socket of peer.sockets) {
        socket.destroy();
        closed++;
      }
    };
    if (ban.scope === 'ip') {
      const peer = this.#byPeer.get(ban.target);
      if (peer) destroy(peer);
      return closed;
    }
    const [network, bits] = ipaddr.parseCIDR(ban.target);
    for (const peer of this.#byPeer.values()) {
      if (peer.key.addr.kind() === network.kind() && peer.key.addr.match(network, bits)) destroy(peer);
    }
    return closed;
  }

  /** Open connections of the peer address `ip`. */
  openFor(ip: string): number {
    return this.#byPeer.get(ip)?.sockets.size ?? 0;
  }

  /** Open connections tracked. */
  get size(): number {
    return this.#size;
  }
}
