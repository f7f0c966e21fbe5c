/**
 * Headers that describe one connection, not the message (RFC 9110 §7.6.1):
 * a proxy must not forward them. `proxy-connection` is not in the RFC but old
 * clients still send it; `expect` is answered by portcullis itself (Node sends
 * the 100 Continue), and undici refuses to forward it. `http2-settings`
 * belongs to an h2c upgrade of one connection (RFC 7540 §3.2.1), and
 * Node's HTTP/2 refuses it in a response.
 */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect', 'http2-settings']);

/** `Connection` values, as commonly spelled, that name no header. */
const NOMINATES_NOTHING = new Set(['keep-alive', 'Keep-Alive', 'close', 'Close']);

/**
 * The header names a message's own `Connection` header nominates as hop-by-hop
 * (`Connection: close, X-Foo` makes X-Foo connection-specific), lower-cased.
 */
export function connectionNominated(connection: string | string[] | undefined): ReadonlySet<string> | null {
  if (connection === undefined) return null;
  // Nearly every message says just one of these two: no list to read, nothing allocated.
  if (typeof connection === 'string' && NOMINATES_NOTHING.has(connection)) return null;
  const names = (Array.isArray(connection) ? connection.join(',') : connection).toLowerCase().split(',');
  const nominated = new Set<string>();
  for (const name of names) {
    const trimmed = name.trim();
    if (trimmed !== '' && trimmed !== 'close' && trimmed !== 'keep-alive') nominated.add(trimmed);
  }
  return nominated.size > 0 ? nominated : null;
}

/** Whether a lower-cased header name must not cross the proxy. */
export function isHopByHop(lowerName: string, nominated: ReadonlySet<string> | null): boolean {
  return HOP_BY_HOP.has(lowerName) || (nominated !== null && nominated.has(lowerName));
}
