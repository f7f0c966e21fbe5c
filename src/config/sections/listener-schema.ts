import { z } from 'zod';
import { ALSO_A_STRING, expected, listenAddress, upstreamUrl } from './schema-values.js';

/* `listen`: the ports portcullis accepts clients on, plain or TLS. */

/**
 * One listener: a plain `HOST:PORT`, or a mapping for HTTPS, for a plain port
 * that redirects to HTTPS, or for a port with its own upstream.
 */
const listenerObject = z
  .strictObject({
    address: listenAddress,
    /** HTTPS: TLS with HTTP/2 and HTTP/1.1 on the same port; needs `tls` certificates. */
    tls: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    /** Answer 308 to https:// on this plain port; ACME challenges (`/.well-known/acme-challenge/`) are still forwarded. */
    redirect_https: z.boolean({ error: (issue) => expected('true or false', issue.input) }).default(false),
    /** Where this listener forwards; absent: the top-level `upstream` (certbot --apache leaves :80 and :443 vhosts apart). */
    upstream: upstreamUrl.optional(),
  })
  .superRefine((listener, ctx) => {
    if (listener.tls && listener.redirect_https) ctx.addIssue({ code: 'custom', message: 'a TLS listener cannot also redirect to HTTPS: redirect_https is for plain ports', path: ['redirect_https'] });
  });

const listenerEntry = z.preprocess((value) => (typeof value === 'string' ? { address: value } : value), listenerObject).meta({ [ALSO_A_STRING]: 'HOST:PORT' });

/** `listen`: one `HOST:PORT` (the original form) or a list of listeners. */
export const listen = z
  .preprocess(
    (value) => (typeof value === 'string' ? [value] : value),
    z.array(listenerEntry, { error: (issue) => expected('HOST:PORT or a list of listeners', issue.input) }).min(1, { error: 'must list at least one listener' }),
  )
  .meta({ [ALSO_A_STRING]: 'HOST:PORT' });

export type ListenerConfig = z.output<typeof listenerObject>;
