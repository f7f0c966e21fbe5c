/**
 * Fields Node's HTTP/2 accepts once only (a second value makes writeHead
 * throw ERR_HTTP2_HEADER_SINGLE_VALUE), as lib/internal/http2/util.js lists
 * them for responses.
 */
const SINGLE_VALUE = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'last-modified',
  'location',
  'max-forwards',
  'retry-after',
  'tk',
  'x-content-type-options',
]);

/**
 * An upstream answer's fields (hop-by-hop ones already gone, see
 * buildClientHeaders) as an HTTP/2 response may carry them. Apache sends
 * what HTTP/1.1 allows, such as `X-Content-Type-Options` twice (a `Header
 * always add` on top of PHP's own); Node throws on a single-value field
 * given twice, and a throw there took the process down. Such a field keeps
 * its first value (what a browser acts on).
 */
export function http2ResponseHeaders(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  let out: Record<string, string | string[]> | null = null;
  for (const name in headers) {
    const value = headers[name] as string | string[];
    if (!Array.isArray(value) || !SINGLE_VALUE.has(name)) continue;
    // Copied only when something changes: the common answer passes as it is.
    out ??= { ...headers };
    out[name] = value[0] as string;
  }
  return out ?? headers;
}
