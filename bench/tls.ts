/**
 * TLS benchmark: new handshakes per second (`openssl s_time -new`), and
 * requests per second over TLS with HTTP/1.1 keep-alive and with HTTP/2
 * (`h2load`, from Debian's nghttp2-client), through portcullis (the shipped
 * policy, rates raised so nothing is refused), through a bare Node HTTPS/HTTP/2
 * proxy (`http2.createSecureServer({ allowHTTP1 })` and undici's
 * `Pool.stream`, the floor a Node proxy can reach) and through nginx, all with
 * the same certificate, in front of the same fast origin, in one run.
 * Clients run on CPU 0, each server alone on CPU 1; CPU per request (or per
 * handshake) is read from /proc, latency from h2load's per-request log.
 * Configurations are interleaved, each round rotated, medians reported: the
 * machine is shared and noisy. The two Node proxies start afresh for every
 * round (two kept side by side measured differently, see bench/load.ts).
 *
 *   npm run build && npx tsx bench/tls.ts [--rounds 5] [--duration 5] [--connections 50]
 */
import { execFile } from 'node:child_process';
import { readFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { stringify } from 'yaml';
import { createTestCa } from '../test/support/test-ca.js';
import { environment, median, printTable, writeResult } from './support/bench-report.js';
import { cpuSeconds, hasTool, pinned, requireTool, startChild, waitForHttp, waitForPort } from './support/bench-tools.js';
import { startNginx } from './support/nginx-peer.js';
import { unrefusingShippedPolicy } from './support/unrefusing-shipped-policy.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' } } });
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const connections = Number(values.connections);
if (!Number.isInteger(rounds) || rounds < 1 || !(durationS > 0) || !Number.isInteger(connections) || connections < 1) {
  console.error('bench/tls: --rounds and --connections must be whole numbers ≥ 1, --duration a positive number of seconds');
  process.exit(2);
}
requireTool('h2load', 'nghttp2-client');
requireTool('openssl', 'openssl');
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

const ORIGIN_PORT = 18_580;
const ports = { nginx: 18_581, nginxPlain: 18_583, portcullis: 18_582, portcullisPlain: 18_682, portcullisAdmin: 19_582, bare: 18_584 };
const NGINX = 'nginx';
const BARE = 'bare Node proxy';
const PORTCULLIS = 'portcullis, shipped policy';

/** One measurement: how many operations it did, how fast, and (for requests) the 99th percentile of their latency. */
interface Sample {
  readonly perSec: number;
  readonly operations: number;
  readonly failed: number;
  readonly p99Ms: number;
}

/** `openssl s_time -new`: full handshakes (no resumption) for `seconds`, one connection at a time. */
async function handshakes(port: number): Promise<Sample> {
  const { stdout } = await run(...pinned(0, 'openssl', ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', String(durationS)]), { timeout: (durationS + 30) * 1000 });
  // "1234 connections in 5.01s; 246.31 connections/user sec, ..." then "1234 connections in 6 real seconds"
  const match = /(\d+) connections in (\d+) real seconds/.exec(stdout);
  const count = Number(match?.[1] ?? 0);
  return { perSec: count / Number(match?.[2] ?? durationS), operations: count, failed: 0, p99Ms: Number.NaN };
}

/** The 99th percentile, in ms, of the third column (µs until the end of the response) of an h2load log. */
function p99FromLog(log: string): number {
  const micros: number[] = [];
  for (const line of log.split('\n')) {
    const columns = line.split('\t');
    if (columns.length >= 3 && columns[1] !== '-1') micros.push(Number(columns[2]));
  }
  if (micros.length === 0) return Number.NaN;
  micros.sort((a, b) => a - b);
  return (micros[Math.min(micros.length - 1, Math.floor(micros.length * 0.99))] as number) / 1000;
}

/** `h2load` over TLS for `seconds`: HTTP/2 with 10 streams per connection, or HTTP/1.1 keep-alive. */
async function h2load(port: number, protocol: 'h2' | 'h1', seconds = durationS): Promise<Sample> {
  const log = join(dir, `h2load-${port}.log`);
  const args = ['-D', String(seconds), '-c', String(connections), '-m', protocol === 'h2' ? '10' : '1', ...(protocol === 'h1' ? ['--h1'] : []), `--log-file=${log}`, `https://127.0.0.1:${port}/`];
  const { stdout } = await run(...pinned(0, 'h2load', args), { timeout: (seconds + 30) * 1000, maxBuffer: 16 * 1024 * 1024 });
  const perSec = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0);
  const requests = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
  const p99Ms = p99FromLog(await readFile(log, 'utf8'));
  await rm(log, { force: true });
  return { perSec, operations: Number(requests?.[3] ?? 0), failed: Number(requests?.[4] ?? 0) + Number(requests?.[5] ?? 0), p99Ms };
}

const MEASURES = [
  { name: 'new TLS handshakes', unit: 'handshakes/s', measure: (port: number) => handshakes(port) },
  { name: 'HTTP/1.1 over TLS, keep-alive', unit: 'req/s', measure: (port: number) => h2load(port, 'h1') },
  { name: 'HTTP/2', unit: 'req/s', measure: (port: number) => h2load(port, 'h2') },
] as const;

/** A server under test: `start()` readies it for one round (a fresh process for the Node proxies). */
interface Server {
  readonly name: string;
  readonly port: number;
  start(): Promise<{ pids(): number[]; stop(): Promise<void> }>;
}

const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-tls-'));
const ca = await createTestCa();
const origin = startChild(...pinned(0, process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'fast-origin.ts'), String(ORIGIN_PORT)]));
const stops: (() => Promise<void>)[] = [];
try {
  await waitForHttp(`http://127.0.0.1:${ORIGIN_PORT}/`);
  const site = await ca.issue(['bench.test']);

  const servers: Server[] = [];
  if (hasTool('nginx')) {
    // nginx's answer to "is the portcullis door expensive?": the same certificate, TLS 1.2/1.3, h2, keep-alive upstream.
    const nginx = await startNginx(dir, ports.nginxPlain, `
  upstream origin { server 127.0.0.1:${ORIGIN_PORT}; keepalive 64; }
  server {
    listen 127.0.0.1:${ports.nginxPlain};
    # Debian 12's nginx 1.22 predates the \`http2 on\` directive.
    listen 127.0.0.1:${ports.nginx} ssl http2;
    ssl_certificate ${site.certFile};
    ssl_certificate_key ${site.keyFile};
    ssl_protocols TLSv1.2 TLSv1.3;
    # nginx closes a connection after 1000 requests by default (h2load counts the
    # streams cut by that as failures); portcullis has no such limit.
    keepalive_requests 1000000;
    http2_max_requests 1000000;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }
  }
`);
    stops.push(() => nginx.stop());
    servers.push({ name: NGINX, port: ports.nginx, start: async () => ({ pids: () => nginx.pids(), stop: async () => {} }) });
    await h2load(ports.nginx, 'h2', 2);
  } else {
    console.log('bench: nginx is not installed, so the nginx peer is skipped. Install it with: sudo apt-get install nginx');
  }
  const policy = join(dir, 'portcullis.yaml');
  await writeFile(
    policy,
    stringify(
      await unrefusingShippedPolicy({
        listen: [`127.0.0.1:${ports.portcullisPlain}`, { address: `127.0.0.1:${ports.portcullis}`, tls: true }],
        upstream: `http://127.0.0.1:${ORIGIN_PORT}`,
        state_dir: `${dir}/state`,
        admin: { listen: `127.0.0.1:${ports.portcullisAdmin}` },
        tls: { certificates: [{ cert: site.certFile, key: site.keyFile }] },
        // One load generator opens every connection and handshake, and sends 500 streams at once, from one address: as shipped, those caps would refuse it.
        connections: { per_client_max: 100_000, tls_handshakes: { rate: '1000000/s', burst: 1_000_000 } },
        concurrency: { upstream_max: 64, per_client_max: 64, queue_max: 1024, per_client_queue_max: 1024 },
      }),
    ),
  );
  /** A Node proxy run afresh, alone on CPU 1, for each round, warmed up by 2 s of HTTP/2 before it is measured. */
  const fresh = (name: string, port: number, command: [string, string[]]): Server => ({
    name,
    port,
    async start() {
      const child = startChild(...pinned(1, ...command), { env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' } });
      await waitForPort(port).catch(async (error: Error) => {
        await child.stop();
        throw new Error(`${name} did not start: ${error.message}\n${child.output()}`);
      });
      await h2load(port, 'h2', 2);
      return { pids: () => [child.child.pid as number], stop: () => child.stop() };
    },
  });
  servers.push(fresh(BARE, ports.bare, [process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'bare-undici-proxy.ts'), String(ports.bare), String(ORIGIN_PORT), site.certFile, site.keyFile]]));
  servers.push(fresh(PORTCULLIS, ports.portcullis, [process.execPath, [CLI, 'serve', '--config', policy]]));

  const samples = new Map<string, { perSec: number; cpuUs: number; failed: number; p99Ms: number }[]>();
  for (let round = 1; round <= rounds; round++) {
    const shift = (round - 1) % servers.length;
    for (const server of [...servers.slice(shift), ...servers.slice(0, shift)]) {
      const running = await server.start();
      try {
        for (const { name, measure } of MEASURES) {
          const before = running.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0);
          const sample = await measure(server.port);
          const used = running.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0) - before;
          const key = `${server.name}|${name}`;
          samples.set(key, [...(samples.get(key) ?? []), { perSec: sample.perSec, cpuUs: sample.operations > 0 ? (used / sample.operations) * 1e6 : Number.NaN, failed: sample.failed, p99Ms: sample.p99Ms }]);
          console.log(`round ${round}/${rounds}, ${server.name}, ${name}: ${sample.perSec.toFixed(0)}/s${Number.isNaN(sample.p99Ms) ? '' : `, p99 ${sample.p99Ms.toFixed(2)} ms`}${sample.failed > 0 ? `, ${sample.failed} failed` : ''}`);
        }
      } finally {
        await running.stop();
      }
    }
  }

  const rows = MEASURES.flatMap(({ name, unit }) =>
    servers.map((server) => {
      const list = samples.get(`${server.name}|${name}`) ?? [];
      return { measure: name, unit, server: server.name, perSec: median(list.map((s) => s.perSec)), cpuUs: median(list.map((s) => s.cpuUs)), p99Ms: median(list.map((s) => s.p99Ms)), failed: list.reduce((sum, s) => sum + s.failed, 0) };
    }),
  );
  /** The performance issue's ratios for one measure: CPU and p99 against the bare proxy, rate and CPU against nginx. */
  const ratios = (measure: string) => {
    const row = (server: string) => rows.find((r) => r.measure === measure && r.server === server);
    const ours = row(PORTCULLIS);
    const bare = row(BARE);
    const nginx = row(NGINX);
    if (!ours) return null;
    return {
      cpuVsBare: bare ? ours.cpuUs / bare.cpuUs : null,
      p99VsBare: bare && !Number.isNaN(ours.p99Ms) ? ours.p99Ms / bare.p99Ms : null,
      rateVsNginx: nginx ? ours.perSec / nginx.perSec : null,
      cpuVsNginx: nginx ? ours.cpuUs / nginx.cpuUs : null,
    };
  };
  const env = environment();
  const fixed = (value: number | null | undefined, digits = 2) => (value === null || value === undefined || Number.isNaN(value) ? '' : value.toFixed(digits));
  printTable(
    `TLS: node ${env.node}, ${env.cpu} (${env.cores} cores); h2load -c${connections} ${durationS}s (-m10 for HTTP/2), openssl s_time -new ${durationS}s; median of ${rounds} interleaved rounds`,
    ['measure', 'server', 'per second', 'CPU µs each', 'p99 ms', 'failed', 'CPU × bare', 'p99 × bare', 'rate × nginx', 'CPU × nginx'],
    rows.map((row) => {
      const r = row.server === PORTCULLIS ? ratios(row.measure) : null;
      return [row.measure, row.server, row.perSec.toFixed(0), fixed(row.cpuUs, 1), fixed(row.p99Ms), String(row.failed), fixed(r?.cpuVsBare), fixed(r?.p99VsBare), fixed(r?.rateVsNginx), fixed(r?.cpuVsNginx)];
    }),
  );
  console.log('targets: CPU ≤ 1.15 × bare, p99 ≤ 2 × bare, rate ≥ 0.5 × nginx');
  console.log(`wrote ${await writeResult('tls', { rounds, durationS, connections, results: rows, ratios: Object.fromEntries(MEASURES.map(({ name }) => [name, ratios(name)])) })}`);
} finally {
  for (const stop of stops.reverse()) await stop();
  await origin.stop();
  await ca.remove();
  await rm(dir, { recursive: true, force: true });
}
