/**
 * The "bare undici proxy" peer of the load and TLS benchmarks: the least a
 * Node reverse proxy can do (drop hop-by-hop headers, `Pool.stream` the
 * answer into the client's response), with no policy, metrics, buffering or
 * logs. It is the floor portcullis's own per-request cost is measured
 * against. Given a certificate and key it serves HTTPS instead, HTTP/2 and
 * HTTP/1.1 on one port (`http2.createSecureServer({ allowHTTP1 })`, Node's
 * own way), with the same handler.
 *
 *   node --import tsx bench/support/bare-undici-proxy.ts LISTEN_PORT ORIGIN_PORT [CERT_FILE KEY_FILE]
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import { Pool } from 'undici';

const [listenPort, originPort, certFile, keyFile] = process.argv.slice(2);
const pool = new Pool(`http://127.0.0.1:${originPort}`, { connections: 64, pipelining: 1 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

/** The client's headers without hop-by-hop ones (nor HTTP/2's pseudo-headers: `:authority` becomes Host), plus X-Forwarded-For. */
function upstreamHeaders(req: Request): Record<string, string> {
  const headers: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (name === ':authority') headers.host ??= raw[i + 1] as string;
    else if (name.charCodeAt(0) !== 58 && !HOP_BY_HOP.has(name)) headers[name] = raw[i + 1] as string;
  }
  headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
  return headers;
}

function forward(req: Request, res: Response): void {
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const bodyless = req.method === 'GET' || req.method === 'HEAD' || (!chunked && req.headers['content-length'] === undefined && req.httpVersionMajor < 2);
  pool
    .stream({ path: req.url ?? '/', method: req.method ?? 'GET', headers: upstreamHeaders(req), body: bodyless ? null : (req as never) }, ({ statusCode, headers }) => {
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
      if (!('stream' in res)) return res.writeHead(statusCode, out);
      // undici must write into a real stream: an HTTP/2 compatibility
      // response is not one, so undici would never learn that a client reset
      // it, and the pool connection would wait on it for good.
      res.stream.respond({ ...out, ':status': statusCode });
      return res.stream;
    })
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
}

if (certFile !== undefined && keyFile !== undefined) {
  const server = http2.createSecureServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), allowHTTP1: true }, forward);
  server.on('sessionError', () => {});
  server.listen(Number(listenPort), '127.0.0.1');
} else {
  const server = http.createServer(forward);
  server.on('clientError', (_error, socket) => socket.destroy());
  server.keepAliveTimeout = 5_000;
  server.listen(Number(listenPort), '127.0.0.1');
}
process.on('SIGTERM', () => process.exit(0));
