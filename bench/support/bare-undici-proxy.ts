/**
 * The "bare undici proxy" peer of the load benchmark: the least a Node
 * reverse proxy can do (drop hop-by-hop headers, `Pool.stream` the answer
 * into the client's response), with no policy, metrics, buffering or logs.
 * It is the floor portcullis's own per-request cost is measured against.
 *
 *   node --import tsx bench/support/bare-undici-proxy.ts LISTEN_PORT ORIGIN_PORT
 */
import http from 'node:http';
import { Pool } from 'undici';

const listenPort = Number(process.argv[2]);
const originPort = Number(process.argv[3]);
const pool = new Pool(`http://127.0.0.1:${originPort}`, { connections: 64, pipelining: 1 });
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** The client's headers without hop-by-hop ones, plus X-Forwarded-For. */
function upstreamHeaders(req: http.IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    if (!HOP_BY_HOP.has(name)) headers[name] = raw[i + 1] as string;
  }
  headers['x-forwarded-for'] = req.socket.remoteAddress ?? '';
  return headers;
}

const server = http.createServer((req, res) => {
  const chunked = req.headers['transfer-encoding'] !== undefined;
  pool
    .stream(
      { path: req.url ?? '/', method: req.method ?? 'GET', headers: upstreamHeaders(req), body: req.method === 'GET' || req.method === 'HEAD' ? null : chunked || req.headers['content-length'] !== undefined ? req : null },
      ({ statusCode, headers }) => {
        const out: Record<string, string | string[]> = {};
        for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
        res.writeHead(statusCode, out);
        return res;
      },
    )
    .catch(() => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
});
server.on('clientError', (_error, socket) => socket.destroy());
server.keepAliveTimeout = 5_000;
server.listen(listenPort, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
