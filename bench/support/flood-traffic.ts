/**
 * Traffic for the xmlrpc flood benchmark, run as its own process (pinned to
 * a CPU by the caller): visitors browsing at human pace from addresses in
 * separate /24s, and, with --flood, flooders of one /24 POSTing to
 * /xmlrpc.php and / as fast as they can over keep-alive, two of them from the
 * start and two neighbours taking over later. Prints one JSON result line.
 * Every loop stops at the deadline.
 *
 *   node --import tsx bench/support/flood-traffic.ts URL DURATION_S VISITORS FLOOD(0|1)
 */
import http from 'node:http';

const [url, durationText, visitorsText, floodText] = process.argv.slice(2);
const target = new URL(url as string);
const durationMs = Number(durationText) * 1000;
const visitors = Number(visitorsText);
const flood = floodText === '1';
const started = performance.now();
const deadline = started + durationMs;
const FLOODERS = ['127.0.13.1', '127.0.13.2'];
const NEIGHBOURS = ['127.0.13.3', '127.0.13.4'];
/** Keep-alive connections per flooder. */
const CONNECTIONS_PER_FLOODER = 4;

interface Answer {
  status: number | string;
  ms: number;
}

function send(agent: http.Agent | false, localAddress: string, method: string, path: string, body?: string): Promise<Answer> {
  const start = performance.now();
  return new Promise((resolve) => {
    const req = http.request({ host: target.hostname, port: target.port, method, path, agent, localAddress, headers: body ? { 'content-type': 'text/xml' } : {} }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - start }));
      res.on('error', () => resolve({ status: 'reset', ms: performance.now() - start }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ status: error.message === 'timeout' ? 'timeout' : (error.code ?? 'error'), ms: performance.now() - start }));
    req.end(body);
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A deterministic pseudo-random sequence, so runs are comparable. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
}

async function visitor(index: number): Promise<Answer[]> {
  const localAddress = `127.0.${100 + index}.1`;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2, localAddress });
  const next = random(index + 1);
  const answers: Answer[] = [];
  for (let i = 0; performance.now() < deadline; i++) {
    // A page view now and then a comment or an admin-ajax call, as people do.
    answers.push(i % 10 === 9 ? await send(agent, localAddress, 'POST', '/echo.cgi', 'comment=hello') : await send(agent, localAddress, 'GET', '/index.html'));
    await sleep(200 + next() * 800);
  }
  agent.destroy();
  return answers;
}

async function flooder(localAddress: string, startAfterMs: number, counts: Map<string, number>): Promise<void> {
  await sleep(startAfterMs);
  const loops = Array.from({ length: CONNECTIONS_PER_FLOODER }, async (_, c) => {
    let agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress });
    for (let i = 0; performance.now() < deadline; i++) {
      const answer = await send(agent, localAddress, 'POST', (i + c) % 2 === 0 ? '/xmlrpc.php' : '/', '<methodCall><methodName>wp.getUsersBlogs</methodName></methodCall>');
      const key = String(answer.status);
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (typeof answer.status !== 'number') {
        // Cut off (banned): a real flooder reconnects and tries again.
        agent.destroy();
        agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress });
        await sleep(20);
      }
    }
    agent.destroy();
  });
  await Promise.all(loops);
}

const floodCounts = new Map<string, number>();
const work: Promise<unknown>[] = [];
const visitorAnswers = Promise.all(Array.from({ length: visitors }, (_, i) => visitor(i)));
if (flood) {
  for (const ip of FLOODERS) work.push(flooder(ip, 0, floodCounts));
  for (const ip of NEIGHBOURS) work.push(flooder(ip, durationMs / 3, floodCounts));
}
const answers = (await visitorAnswers).flat();
await Promise.all(work);
const times = answers.map((answer) => answer.ms).sort((a, b) => a - b);
const pct = (p: number) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))] ?? Number.NaN;
console.log(
  JSON.stringify({
    visitors: { requests: answers.length, ok: answers.filter((answer) => answer.status === 200).length, p50Ms: pct(50), p99Ms: pct(99), failures: answers.filter((answer) => answer.status !== 200).map((answer) => answer.status).slice(0, 20) },
    flood: Object.fromEntries(floodCounts),
  }),
);
