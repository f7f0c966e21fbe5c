import http, { type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { systemTimers, type Timers } from '../core/timers.js';
import type { OriginFormTarget } from '../policy/origin-form.js';
import { buildUpstreamHeaders, type ForwardingIdentity } from './upstream-headers.js';

/** Settings of upgrade forwarding. */
export interface WebSocketForwarderOptions {
  /** Origin such as `http://127.0.0.1:8080`. */
  readonly upstream: string;
  /** Waiting for the upstream's answer to the handshake longer than this gives 504. */
  readonly handshakeTimeoutMs: number;
  /** @default systemTimers */
  readonly timers?: Timers;
}

/**
 * How a forwarded upgrade's handshake ended: `upgraded` (101, bytes now flow
 * both ways), `answered` (the upstream refused with an ordinary response,
 * relayed to the client), or a failure of the upstream or of the client.
 */
export type HandshakeOutcome = 'upgraded' | 'answered' | 'upstream_unreachable' | 'upstream_timeout' | 'client_aborted';

/**
 * Passes WebSocket (and other Upgrade) handshakes through with `node:http`,
 * sending the path exactly as decided (http-proxy rebuilt it with `url.parse`,
 * which turns `\` into `/` and merges `//`: the bytes Apache received were not
 * the bytes the blocks had checked). The returned promise settles when the
 * handshake is over, which is when the upstream slot the caller holds can go:
 * Apache works for the handshake, not for the bytes spliced after it.
 */
export class WebSocketForwarder {
  readonly #upstream: URL;
  readonly #handshakeTimeoutMs: number;
  readonly #timers: Timers;
  readonly #logger: Logger;
  readonly #open = new Set<Duplex>();

  constructor(options: WebSocketForwarderOptions, logger: Logger) {
    this.#upstream = new URL(options.upstream);
    this.#handshakeTimeoutMs = options.handshakeTimeoutMs;
    this.#timers = options.timers ?? systemTimers;
    this.#logger = logger;
  }

  /** Forwards an upgrade request whose policy decision was `allow`; never rejects. */
  forward(req: IncomingMessage, client: Duplex, head: Buffer, who: ForwardingIdentity, target: OriginFormTarget): Promise<HandshakeOutcome> {
    const headers = buildUpstreamHeaders(req.rawHeaders, undefined, who, target.authority);
    // The two hop-by-hop headers an upgrade needs are put back, as the client sent them.
    headers.push('connection', 'Upgrade');
    if (req.headers.upgrade !== undefined) headers.push('upgrade', req.headers.upgrade);
    return new Promise<HandshakeOutcome>((resolve) => {
      let settled = false;
      const settle = (outcome: HandshakeOutcome) => {
        if (settled) return;
        settled = true;
        this.#timers.clearTimeout(timer);
        client.off('close', onClientGone);
        resolve(outcome);
      };
      const upstreamReq = http.request({
        host: this.#upstream.hostname.replace(/^\[|\]$/g, ''),
        port: this.#upstream.port === '' ? 80 : Number(this.#upstream.port),
        method: req.method,
        path: target.target,
        headers,
        setHost: false,
        agent: false,
      });
      const onClientGone = () => {
        upstreamReq.destroy();
        settle('client_aborted');
      };
      client.once('close', onClientGone);
      const timer = this.#timers.setTimeout(() => {
        upstreamReq.destroy();
        refuse(client, 504, 'Gateway Timeout');
        settle('upstream_timeout');
      }, this.#handshakeTimeoutMs);
      upstreamReq.on('error', (error) => {
        if (settled) return;
        this.#logger.warn({ err: error, target: target.target.slice(0, 256) }, 'websocket upstream error');
        refuse(client, 502, 'Bad Gateway');
        settle('upstream_unreachable');
      });
      upstreamReq.on('response', (res) => {
        // Refused by the upstream (no 101): relay its answer and close.
        res.on('error', () => client.destroy());
        if (client.destroyed) {
          res.destroy();
          return;
        }
        client.write(statusAndHeaders(res));
        closeOnceWritten(client);
        res.pipe(client);
        settle('answered');
      });
      upstreamReq.on('upgrade', (res, upstream: Socket, upstreamHead: Buffer) => {
        upstream.on('error', () => client.destroy());
        // A client that ended its side while the upstream was deciding is
        // over too: its 'end' has passed, so the listener below would never
        // hear it, and the splice would stay open as long as the upstream does.
        if (client.destroyed || client.readableEnded) {
          upstream.destroy();
          client.destroy();
          return;
        }
        client.write(statusAndHeaders(res));
        if (upstreamHead.length > 0) client.write(upstreamHead);
        if (head.length > 0) upstream.write(head);
        this.#open.add(client);
        client.once('close', () => {
          this.#open.delete(client);
          upstream.destroy();
        });
        upstream.once('close', () => client.destroy());
        // The server's sockets allow half-open connections; a spliced one
        // that either side ends is over (as nginx treats it), or it would
        // linger with its per-client count until a timeout.
        client.once('end', () => client.destroy());
        upstream.once('end', () => upstream.destroy());
        upstream.pipe(client);
        client.pipe(upstream);
        settle('upgraded');
      });
      upstreamReq.end();
    });
  }

  /** Ends every spliced connection (shutdown). */
  close(): void {
    for (const socket of this.#open) socket.destroy();
  }
}

/** The head of an upstream answer, re-serialised from its raw headers. */
function statusAndHeaders(res: IncomingMessage): string {
  let text = `HTTP/1.1 ${res.statusCode} ${res.statusMessage}\r\n`;
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return `${text}\r\n`;
}

/** Writes a bodiless answer of ours to a socket that is not (or no longer) an HTTP response, and closes it. */
export function refuse(socket: Duplex, status: number, reason: string): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  closeOnceWritten(socket);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/**
 * Closes `socket` once what we end it with is written. Ending only half-closes
 * it (the server's sockets allow half-open connections), and a socket whose
 * client sent bytes nobody reads never sees its 'end': it never closed, and
 * its per-client and global connection counts were held for good, until one
 * client was locked out and the global cap spent. What it still sends is read
 * and discarded meanwhile.
 */
function closeOnceWritten(socket: Duplex): void {
  socket.resume();
  socket.once('finish', () => socket.destroy());
}
