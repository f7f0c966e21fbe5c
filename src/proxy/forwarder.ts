import type { IncomingMessage, ServerResponse } from 'node:http';
import type { OriginFormTarget } from '../policy/origin-form.js';
import type { ForwardingIdentity } from './upstream-headers.js';

/**
 * How one forwarded exchange ended. `client_aborted` is the client hanging up
 * mid-way: not the upstream's fault and not counted against it.
 */
export type ForwardOutcome = 'ok' | 'upstream_unreachable' | 'upstream_timeout' | 'upstream_error' | 'client_aborted' | 'body_too_large';

/**
 * Sends an admitted request upstream and streams the answer back. The proxy
 * depends on this interface only, so the transport (undici today) can change
 * without touching policy or admission.
 */
export interface Forwarder {
  /**
   * Forwards `req` to `target` (the origin-form the policy decided on, sent
   * byte for byte) and writes the upstream's answer (or a 502/504/413 of its
   * own) to `res`. Resolves when the exchange is over; never rejects.
   */
  forward(req: IncomingMessage, res: ServerResponse, who: ForwardingIdentity, target: OriginFormTarget): Promise<ForwardOutcome>;
  /** Closes upstream connections once in-flight requests are done. */
  close(): Promise<void>;
}
