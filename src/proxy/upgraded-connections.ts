import type { Duplex } from 'node:stream';

/**
 * Upgraded (WebSocket) connections open per client. Once spliced they hold no
 * upstream slot, so without a cap of their own one client could open
 * thousands and keep as many upstream connections busy. Its size is bounded
 * by the open connections, which the server caps.
 */
export class UpgradedConnections {
  readonly #byClient = new Map<string, number>();
  #perClientMax: number;

  constructor(perClientMax: number) {
    this.#perClientMax = perClientMax;
  }

  /** Applies a reloaded cap; connections already open stay. */
  configure(perClientMax: number): void {
    this.#perClientMax = perClientMax;
  }

  /** Counts `socket` for `clientIp` until it closes; false (nothing counted) when the client is at its cap. */
  tryOpen(clientIp: string, socket: Duplex): boolean {
    const open = this.#byClient.get(clientIp) ?? 0;
    if (open >= this.#perClientMax) return false;
    this.#byClient.set(clientIp, open + 1);
    socket.once('close', () => {
      const left = (this.#byClient.get(clientIp) ?? 1) - 1;
      if (left <= 0) this.#byClient.delete(clientIp);
      else this.#byClient.set(clientIp, left);
    });
    return true;
  }

  /** Upgraded connections open now, in total. */
  get size(): number {
    let total = 0;
    for (const open of this.#byClient.values()) total += open;
    return total;
  }
}
