/**
 * TLS benchmark: new handshakes per second (`openssl s_time -new`), and
 * requests per second over TLS with HTTP/1.1 keep-alive and with HTTP/2
 * (`h2load`, from Debian's nghttp2-client), through portcullis and through
 * nginx with the same certificate, in front of the same fast origin, in one
 * run. Clients run on CPU 0, each server alone on CPU 1; CPU per request
 * (or per handshake) is read from /proc. Configurations are interleaved,
 * each round rotated, medians reported: the machine is shared and noisy.
 *
 *   npm run build && npx tsx bench/tls.ts [--rounds 5] [--duration 5] [--connections 50]
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { createTestCa } from '../test/support/test-ca.js';
import { environment, median, printTable, writeResult } from './support/bench-report.js';
import { cpuSeconds, hasTool, pinned, requireTool, startChild, waitForHttp } from './support/bench-tools.js';
import { startNginx } from './support/nginx-peer.js';

const run = promisify(execFile);
const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' } } });
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const connections = Number(values.connections);
requireTool('h2load', 'nghttp2-client');
requireTool('openssl', 'openssl');
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

const ORIGIN_PORT = 18_580;
const ports = { nginx: 18_581, nginxPlain: 18_583, portcullis: 18_582, portcullisAdmin: 19_582 };

/** One measurement: how many operations it did and how fast. */
interface Sample {
  readonly perSec: number;
  readonly operations: number;
  readonly failed: number;
}

/** `openssl s_time -new`: full handshakes (no resumption) for `seconds`, one connection at a time. */
async function handshakes(port: number): Promise<Sample> {
  const { stdout } = await run(...pinned(0, 'openssl', ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', String(durationS)]), { timeout: (durationS + 30) * 1000 });
  // "1234 connections in 5.01s; 246.31 connections/user sec, ..." then "1234 connections in 6 real seconds"
  const match = /(\d+) connections in (\d+) real seconds/.exec(stdout);
  const count = Number(match?.[1] ?? 0);
  return { perSec: count / Number(match?.[2] ?? durationS), operations: count, failed: 0 };
}

/** `h2load` over TLS for `durationS`: HTTP/2 with 10 streams per connection, or HTTP/1.1 keep-alive. */
async function h2load(port: number, protocol: 'h2' | 'h1'): Promise<Sample> {
  const args = ['-D', String(durationS), '-c', String(connections), '-m', protocol === 'h2' ? '10' : '1', ...(protocol === 'h1' ? ['--h1'] : []), `https://127.0.0.1:${port}/`];
  const { stdout } = await run(...pinned(0, 'h2load', args), { timeout: (durationS + 30) * 1000, maxBuffer: 16 * 1024 * 1024 });
  const perSec = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0);
  const requests = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
  return { perSec, operations: Number(requests?.[3] ?? 0), failed: Number(requests?.[4] ?? 0) + Number(requests?.[5] ?? 0) };
}

const MEASURES = [
  { name: 'new TLS handshakes', unit: 'handshakes/s', measure: (port: number) => handshakes(port) },
  { name: 'HTTP/1.1 over TLS, keep-alive', unit: 'req/s', measure: (port: number) => h2load(port, 'h1') },
  { name: 'HTTP/2', unit: 'req/s', measure: (port: number) => h2load(port, 'h2') },
] as const;

const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-tls-'));
const ca = await createTestCa();
const origin = startChild(...pinned(0, process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'fast-origin.ts'), String(ORIGIN_PORT)]));
const stops: (() => Promise<void>)[] = [];
try {
  await waitForHttp(`http://127.0.0.1:${ORIGIN_PORT}/`);
  const site = await ca.issue(['bench.test']);

  const servers: { name: string; port: number; pids(): number[] }[] = [];
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
    servers.push({ name: 'nginx', port: ports.nginx, pids: () => nginx.pids() });
  } else {
    console.log('bench: nginx is not installed, so the nginx peer is skipped. Install it with: sudo apt-get install nginx');
  }
  const policy = join(dir, 'portcullis.yaml');
  await writeFile(
    policy,
    `listen:\n  - "127.0.0.1:${ports.portcullis + 100}"\n  - { address: "127.0.0.1:${ports.portcullis}", tls: true }\n` +
      `upstream: "http://127.0.0.1:${ORIGIN_PORT}"\nstate_dir: "${dir}/state"\nadmin: { listen: "127.0.0.1:${ports.portcullisAdmin}" }\n` +
      `tls:\n  certificates:\n    - { cert: "${site.certFile}", key: "${site.keyFile}" }\n` +
      // The benchmark measures the door, not refusals: no limit or ban may trigger at these rates.
      `escalation: { enabled: false }\nconnections: { per_client_max: 100000, tls_handshakes: { rate: 1000000/s, burst: 1000000 } }\nconcurrency: { upstream_max: 64, per_client_max: 64 }\n`,
  );
  const proxy = startChild(...pinned(1, process.execPath, [CLI, 'serve', '--config', policy]), { env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' } });
  stops.push(() => proxy.stop());
  await waitForHttp(`http://127.0.0.1:${ports.portcullis + 100}/`);
  servers.push({ name: 'portcullis', port: ports.portcullis, pids: () => [proxy.child.pid as number] });

  // Warm-up: JIT, pools, session caches.
  for (const server of servers) await h2load(server.port, 'h2');

  const samples = new Map<string, { perSec: number; cpuUs: number; failed: number }[]>();
  for (let round = 1; round <= rounds; round++) {
    const shift = (round - 1) % servers.length;
    for (const server of [...servers.slice(shift), ...servers.slice(0, shift)]) {
      for (const { name, measure } of MEASURES) {
        const before = server.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0);
        const sample = await measure(server.port);
        const used = server.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0) - before;
        const key = `${server.name}|${name}`;
        samples.set(key, [...(samples.get(key) ?? []), { perSec: sample.perSec, cpuUs: sample.operations > 0 ? (used / sample.operations) * 1e6 : Number.NaN, failed: sample.failed }]);
        console.log(`round ${round}/${rounds}, ${server.name}, ${name}: ${sample.perSec.toFixed(0)}/s${sample.failed > 0 ? `, ${sample.failed} failed` : ''}`);
      }
    }
  }

  const rows = MEASURES.flatMap(({ name, unit }) =>
    servers.map((server) => {
      const list = samples.get(`${server.name}|${name}`) ?? [];
      return { measure: name, unit, server: server.name, perSec: median(list.map((s) => s.perSec)), cpuUs: median(list.map((s) => s.cpuUs)), failed: list.reduce((sum, s) => sum + s.failed, 0) };
    }),
  );
  const ratio = (measure: string) => {
    const ours = rows.find((row) => row.measure === measure && row.server === 'portcullis');
    const peer = rows.find((row) => row.measure === measure && row.server === 'nginx');
    return ours && peer ? { throughput: ours.perSec / peer.perSec, cpu: ours.cpuUs / peer.cpuUs } : null;
  };
  const env = environment();
  printTable(
    `TLS: node ${env.node}, ${env.cpu} (${env.cores} cores); h2load -c${connections} ${durationS}s (-m10 for HTTP/2), openssl s_time -new ${durationS}s; median of ${rounds} interleaved rounds`,
    ['measure', 'server', 'per second', 'CPU µs each', 'failed', '× nginx (rate)', '× nginx (CPU)'],
    rows.map((row) => {
      const r = row.server === 'portcullis' ? ratio(row.measure) : null;
      return [row.measure, row.server, row.perSec.toFixed(0), Number.isNaN(row.cpuUs) ? '-' : row.cpuUs.toFixed(1), String(row.failed), r ? r.throughput.toFixed(2) : '', r ? r.cpu.toFixed(2) : ''];
    }),
  );
  console.log(`wrote ${await writeResult('tls', { rounds, durationS, connections, results: rows, ratios: Object.fromEntries(MEASURES.map(({ name }) => [name, ratio(name)])) })}`);
} finally {
  for (const stop of stops.reverse()) await stop();
  await origin.stop();
  await ca.remove();
  await rm(dir, { recursive: true, force: true });
}
