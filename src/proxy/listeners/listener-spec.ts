import type { Forwarder } from '../forwarder.js';
import type { WebSocketForwarder } from '../websocket-forwarder.js';

/** Where a listener's requests go: the forwarders of one upstream. */
export interface UpstreamRoute {
  /** The upstream's origin, for logs. */
  readonly upstream: string;
  readonly forwarder: Forwarder;
  readonly websockets: WebSocketForwarder;
}

/** One `listen` entry of the policy, resolved: where to bind, what it speaks, where it forwards. */
export interface ListenerSpec {
  readonly host: string;
  readonly port: number;
  /** HTTPS: TLS with HTTP/2 and HTTP/1.1 on the same port. */
  readonly tls: boolean;
  /** A plain listener that answers 308 to https:// (ACME challenges excepted). */
  readonly redirectHttps: boolean;
  readonly route: UpstreamRoute;
}

/** What a request carries of the listener it came in on. */
export interface ListenerContext {
  /** Told to Apache as X-Forwarded-Proto. */
  readonly proto: 'http' | 'https';
  /** The port the client connected to, told to Apache as X-Forwarded-Port. */
  port: number;
  readonly redirectHttps: boolean;
  readonly route: UpstreamRoute;
}
