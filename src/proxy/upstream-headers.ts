import { connectionNominated, isHopByHop } from './hop-by-hop.js';

/** What portcullis knows about who sent a request, for the X-Forwarded-* headers Apache logs. */
export interface ForwardingIdentity {
  /** The client as portcullis resolved it. */
  readonly clientIp: string;
  /** The socket peer (the client itself, or a trusted proxy in front of portcullis). */
  readonly peerIp: string;
  /** Whether the peer is a trusted proxy, whose X-Forwarded-For/-Proto are kept and extended. */
  readonly peerTrusted: boolean;
  /** How the client reached portcullis: told to Apache as X-Forwarded-Proto (so WordPress's is_ssl() can be true). @default 'http' */
  readonly proto?: 'http' | 'https';
  /** The port the client connected to, told to Apache as X-Forwarded-Port. */
  readonly port?: number;
}

/** Headers portcullis sets itself: a client's `Connection` cannot nominate them away, and untrusted copies are dropped. */
const FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port', 'x-real-ip']);

/**
 * Headers that name the client or the host it asked for, which applications
 * (WordPress plugins among them) read for the client address and for the host
 * in password-reset links. Only a trusted proxy may say these; from anyone
 * else they are dropped. Any `X-Forwarded-*` counts too. `client-ip`,
 * `x-forwarded` and `forwarded-for` are what PHP's usual get_client_ip()
 * helpers try before REMOTE_ADDR (as HTTP_CLIENT_IP, HTTP_X_FORWARDED,
 * HTTP_FORWARDED_FOR).
 */
const IDENTITY = new Set([
  'forwarded',
  'forwarded-for',
  'x-forwarded',
  'x-real-ip',
  'client-ip',
  'x-client-ip',
  'cf-connecting-ip',
  'true-client-ip',
  'x-cluster-client-ip',
  'fastly-client-ip',
  'x-originating-ip',
  'x-remote-ip',
  'x-remote-addr',
]);

function isIdentityHeader(lower: string): boolean {
  return IDENTITY.has(lower) || lower.startsWith('x-forwarded-');
}

/**
 * Builds the header list sent upstream from the client's raw headers (a flat
 * [name, value, ...] array, so duplicates and order survive): hop-by-hop headers
 * go, Host stays (or becomes `authority`, the host of an absolute-form target,
 * which is what Apache picks the vhost by), and X-Forwarded-For / X-Real-IP /
 * X-Forwarded-Proto say who the client is so Apache's mod_remoteip logs the real
 * address. A client that is not a trusted proxy cannot put words in Apache's
 * log: its identity headers are discarded, not extended.
 */
export function buildUpstreamHeaders(rawHeaders: readonly string[], connection: string | string[] | undefined, who: ForwardingIdentity, authority: string | null = null): string[] {
  const nominated = connectionNominated(connection);
  const out: string[] = authority === null ? [] : ['host', authority];
  let hasHost = authority !== null;
  let forwardedFor: string | null = null;
  let forwardedProto: string | null = null;
  let forwardedPort: string | null = null;
  // HTTP/2 (RFC 9113 §8.3, §8.2.3): pseudo-headers never reach Apache,
  // `:authority` stands for Host, and split cookie fields are joined with "; ".
  let h2Authority: string | null = null;
  let h2Cookies: string | null = null;
  const http2 = rawHeaders.length > 0 && (rawHeaders[0] as string).charCodeAt(0) === COLON;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    const value = rawHeaders[i + 1] as string;
    if (name.charCodeAt(0) === COLON) {
      if (name === ':authority') h2Authority = value;
      continue;
    }
    const lower = name.toLowerCase();
    if (lower === 'host') {
      // `Connection: close, host` must not strip the vhost Apache serves.
      if (authority === null) {
        out.push(name, value);
        hasHost = true;
      }
      continue;
    }
    if (FORWARDING.has(lower)) {
      if (!who.peerTrusted) continue;
      if (lower === 'x-forwarded-for') forwardedFor = forwardedFor === null ? value : `${forwardedFor}, ${value}`;
      else if (lower === 'x-forwarded-proto') forwardedProto ??= value;
      else if (lower === 'x-forwarded-port') forwardedPort ??= value;
      continue;
    }
    if (isHopByHop(lower, nominated)) continue;
    if (!who.peerTrusted && isIdentityHeader(lower)) continue;
    if (http2 && lower === 'cookie') {
      h2Cookies = h2Cookies === null ? value : `${h2Cookies}; ${value}`;
      continue;
    }
    out.push(name, value);
  }
  if (!hasHost && h2Authority !== null) out.unshift('host', h2Authority);
  if (h2Cookies !== null) out.push('cookie', h2Cookies);
  out.push(
    'x-forwarded-for', forwardedFor === null ? who.peerIp : `${forwardedFor}, ${who.peerIp}`,
    'x-real-ip', who.clientIp,
    'x-forwarded-proto', forwardedProto ?? who.proto ?? 'http',
  );
  const port = forwardedPort ?? (who.port === undefined ? null : String(who.port));
  if (port !== null) out.push('x-forwarded-port', port);
  return out;
}

const COLON = 0x3a;

/**
 * Copies an upstream response's headers for the client, minus hop-by-hop ones:
 * Apache's `Keep-Alive: timeout=5` describes its connection to portcullis, not
 * portcullis's to the client, and passing it on promises what we do not keep.
 */
export function buildClientHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const nominated = connectionNominated(headers['connection']);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isHopByHop(name, nominated)) continue;
    out[name] = value;
  }
  return out;
}
