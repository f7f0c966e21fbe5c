/**
 * The "fast origin" of the load benchmarks: answers every request with the
 * same 512-byte page, keep-alive, so the proxy in front is what is measured.
 *
 *   node --import tsx bench/support/fast-origin.ts PORT
 */
import http from 'node:http';

const port = Number(process.argv[2]);
const body = Buffer.alloc(512, 'x');
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/html', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
