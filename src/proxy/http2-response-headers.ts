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

/** Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2): Node throws ERR_HTTP2_INVALID_CONNECTION_HEADERS on them. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings']);

/**
 * An upstream answer's fields as an HTTP/2 response may carry them. Apache
 * sends what HTTP/1.1 allows, such as `X-Content-Type-Options` twice (a
 * `Header always add` on top of PHP's own) or an `HTTP2-Settings` field; Node
 * throws on those, and a throw there took the process down. A repeated
 * single-value field keeps its first value (what a browser acts on),
 * connection-specific ones go, `te` stays only as `trailers`.
 */
export function http2ResponseHeaders(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  let out: Record<string, string | string[]> | null = null;
  for (const name in headers) {
    const value = headers[name] as string | string[];
    const drop = CONNECTION_SPECIFIC.has(name) || (name === 'te' && value !== 'trailers');
    const single = Array.isArray(value) && SINGLE_VALUE.has(name);
    if (!drop && !single) continue;
    // Copied only when something changes: the common answer passes as it is.
    out ??= { ...headers };
    if (drop) delete out[name];
    else out[name] = (value as string[])[0] as string;
  }
  return out ?? headers;
}
