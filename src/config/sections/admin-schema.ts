import { z } from 'zod';
import { parseHostAuthority } from '../host-authority.js';
import { describe, listenAddress, text } from './schema-values.js';

/* `admin`: the loopback API and who may name it. */

/** `admin`: where the admin API listens and which Host names it answers. */
export const admin = z.strictObject({
  /** The admin API (/metrics, /bans, /status ...). Loopback by default: it reveals client addresses. */
  listen: listenAddress.default('127.0.0.1:9181'),
  /**
   * File holding the bearer token that state-changing calls need (one line;
   * PORTCULLIS_ADMIN_TOKEN overrides it). Absent: such calls are refused.
   */
  token_file: text('a file path').optional(),
  /**
   * Host names (and `name:port`) the admin API answers besides its own listen
   * address and `localhost`, e.g. `web1:9181` for a remote Prometheus. Any other
   * `Host` is refused, so a web page cannot reach the API by DNS rebinding.
   */
  allowed_hosts: z
    .array(
      // Checked here with the parser the API uses, so an entry that could never match (`http://web1`, `web1.`) is an error, not a silent no-op.
      text('a host name like web1 or web1:9181').refine((value) => parseHostAuthority(value) !== null, {
        error: (issue) => `must be a host name or address with an optional port, like web1, web1:9181, 192.0.2.7 or [2001:db8::1]:9181 (no scheme, path or trailing dot), got ${describe(issue.input)}`,
      }),
    )
    .default([]),
});
