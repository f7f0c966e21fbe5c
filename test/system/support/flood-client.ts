/**
 * HTTP from one source address in the client namespace, for end-to-end tests.
 * `flood` POSTs to a path over one keep-alive connection until the connection
 * is cut or `max` requests were sent; `get` sends one GET on a new connection.
 * Both give up after `timeoutMs` and print a JSON result; every loop is bounded.
 */
export const FLOOD_SCRIPT = `
const http = require('node:http');
const [mode, host, port, localAddress, path, max, timeoutMs] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress });
const deadline = setTimeout(() => { console.log(JSON.stringify({ statuses, error: 'timeout' })); process.exit(0); }, Number(timeoutMs));
const statuses = [];
function once(method) {
  return new Promise((resolve) => {
    const req = http.request({ host, port: Number(port), path, method, agent: mode === 'get' ? false : agent, localAddress }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.setTimeout(2000, () => req.destroy(new Error('request timeout')));
    req.on('error', (error) => resolve('error ' + (error.code || error.message)));
    req.end(method === 'POST' ? '<methodCall/>' : undefined);
  });
}
(async () => {
  const count = mode === 'get' ? 1 : Number(max);
  for (let i = 0; i < count; i++) {
    const status = await once(mode === 'get' ? 'GET' : 'POST');
    statuses.push(status);
    if (typeof status !== 'number') break;
  }
  clearTimeout(deadline);
  agent.destroy();
  console.log(JSON.stringify({ statuses }));
})();
`;
