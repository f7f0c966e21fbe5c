import { randomBytes } from 'node:crypto';
import type { TimerHandle, Timers } from '../core/timers.js';

/** Node's ticket key: 16 bytes of key name, 16 of HMAC secret, 16 of AES key. */
const TICKET_KEY_BYTES = 48;

/** How often the session ticket key is replaced. Judgement call: nginx's and Caddy's advice; a stolen key decrypts at most this much recorded traffic. */
export const TICKET_KEY_ROTATION_MS = 12 * 3_600_000;

/** What holds a ticket key: `tls.Server`, and so `https` and `http2` secure servers. */
export interface TicketKeyHolder {
  setTicketKeys(keys: Buffer): void;
}

export interface TicketKeyRotationOptions {
  readonly timers: Timers;
  /** @default TICKET_KEY_ROTATION_MS */
  readonly intervalMs?: number;
  /** @default 48 random bytes */
  readonly newKey?: () => Buffer;
}

/**
 * One session-ticket key for every TLS server of the process, replaced on an
 * interval. Tickets let a returning client resume without the certificate
 * signature, the costly half of a handshake; a key that never changes would
 * let whoever steals it decrypt every recorded session (no forward secrecy).
 *
 * Node holds exactly one ticket key per server (`setTicketKeys` takes one
 * 48-byte key, and there is no public hook for a decrypt-only previous key),
 * so a ticket issued under the previous key falls back to a full handshake:
 * once per returning client per rotation, and only for tickets younger than
 * the session timeout (1 h of 12).
 */
export class TicketKeyRotation {
  readonly #timers: Timers;
  readonly #newKey: () => Buffer;
  readonly #holders = new Set<TicketKeyHolder>();
  readonly #interval: TimerHandle;
  #current: Buffer;

  constructor(options: TicketKeyRotationOptions) {
    this.#timers = options.timers;
    this.#newKey = options.newKey ?? (() => randomBytes(TICKET_KEY_BYTES));
    this.#current = this.#newKey();
    this.#interval = this.#timers.setInterval(() => this.rotate(), options.intervalMs ?? TICKET_KEY_ROTATION_MS);
  }

  /** The key in use now (for a server being built, or a context being replaced). */
  get current(): Buffer {
    return this.#current;
  }

  /** Gives `holder` the current key and every later one. */
  add(holder: TicketKeyHolder): void {
    this.#holders.add(holder);
    holder.setTicketKeys(this.#current);
  }

  /** Stops handing `holder` new keys. */
  remove(holder: TicketKeyHolder): void {
    this.#holders.delete(holder);
  }

  /** Replaces the key now, on every holder. */
  rotate(): void {
    this.#current = this.#newKey();
    for (const holder of this.#holders) holder.setTicketKeys(this.#current);
  }

  /** Stops rotating. */
  close(): void {
    this.#timers.clearInterval(this.#interval);
    this.#holders.clear();
  }
}
