import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Writable } from 'node:stream';
import type { OriginFormTarget } from '../policy/origin-form.js';
import type { ReceivedBody } from './buffering/received-body.js';
import type { ForwardingIdentity } from './upstream-headers.js';

/**
 * How one forwarded exchange ended. `client_aborted` is the client hanging up
 * mid-way: not the upstream's fault and not counted against it.
 */
export type ForwardOutcome = 'ok' | 'upstream_unreachable' | 'upstream_timeout' | 'upstream_error' | 'client_aborted' | 'body_too_large';

/**
 * How one exchange is buffered (src/proxy/buffering/). Without it the
 * exchange is streamed both ways: the body read from `req` as it arrives,
 * the answer written straight into `res` (buffering off, or a path in
 * `buffering.stream_paths`).
 */
export interface ForwardBuffering {
  /** The request body, received in full before the slot was taken; null: the request has none. */
  readonly body: ReceivedBody | null;
  /** Wraps `res` in the stream the answer is written into, so that forwarding ends when the upstream is done, not the client. */
  readonly response: (res: ServerResponse) => Writable;
}

/**
 * Sends an admitted request upstream and streams the answer back. The proxy
 * depends on this interface only, so the transport (undici today) can change
 * without touching policy or admission.
 */
export interface Forwarder {
  /**
   * Forwards `req` to `target` (the origin-form the policy decided on, sent
   * byte for byte) and writes the upstream's answer (or a 502/504/413 of its
   * own) to `res`. Resolves when the exchange is over; never rejects. With
   * `buffering`, "over" is when the upstream has sent all: delivery to a
   * slow client goes on after it.
   */
  forward(req: IncomingMessage, res: ServerResponse, who: ForwardingIdentity, target: OriginFormTarget, buffering?: ForwardBuffering): Promise<ForwardOutcome>;
  /** Closes upstream connections once in-flight requests are done. */
  close(): Promise<void>;
}
