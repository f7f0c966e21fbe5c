import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { Logger } from 'pino';
import { buildUpstreamHeaders, type ForwardingIdentity } from './upstream-headers.js';

/**
 * Passes WebSocket (and other Upgrade) handshakes through with http-proxy,
 * which handles the socket splice well; plain HTTP goes through undici.
 */
export class WebSocketForwarder {
  readonly #proxy: httpProxy;

  constructor(upstream: string, logger: Logger) {
    // xfwd stays off: http-proxy would trust the client's own X-Forwarded-For.
    this.#proxy = httpProxy.createProxyServer({ target: upstream, ws: true, xfwd: false });
    this.#proxy.on('error', (error, _req, socket) => {
      logger.warn({ err: error }, 'websocket upstream error');
      if (socket && 'destroy' in socket) (socket as Duplex).destroy();
    });
  }

  /** Forwards an upgrade request whose policy decision was `allow`. */
  forward(req: IncomingMessage, socket: Duplex, head: Buffer, who: ForwardingIdentity): void {
    // http-proxy copies req.headers; rewrite them so the forwarding headers are ours.
    const raw = buildUpstreamHeaders(req.rawHeaders, undefined, who);
    const headers: Record<string, string> = {};
    for (let i = 0; i + 1 < raw.length; i += 2) headers[(raw[i] as string).toLowerCase()] = raw[i + 1] as string;
    headers['connection'] = 'Upgrade';
    if (req.headers.upgrade !== undefined) headers['upgrade'] = req.headers.upgrade;
    req.headers = headers;
    this.#proxy.ws(req, socket, head);
  }

  close(): void {
    this.#proxy.close();
  }
}
