/**
 * Load benchmark, clean traffic: a fast origin, then Apache, each reached directly,
 * through nginx with a `limit_req` policy that never triggers, through
 * portcullis with no policy (pure forwarding) and through portcullis with a
 * full policy that never refuses (every GET pays six buckets, blocks are
 * matched). Configurations are interleaved, each round rotated (A B C D, B C D A, …), and medians
 * reported, because the machine is shared and noisy. wrk runs on CPU 0, each
 * proxy on CPU 1 (taskset), loopback only, every run bounded.
 *
 *   npm run build && npx tsx bench/load.ts [--rounds 7] [--duration 5] [--connections 50]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startApache, type ApacheHandle } from '../test/support/apache.js';
import { environment, median, printTable, writeResult } from './support/bench-report.js';
import { cpuSeconds, hasTool, pinned, requireTool, startChild, waitForHttp } from './support/bench-tools.js';
import { startNginx } from './support/nginx-peer.js';
import { runWrk, type WrkRun } from './support/wrk.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' } } });
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const connections = Number(values.connections);
requireTool('wrk', 'wrk');
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

const ORIGIN_PORT = 18_480;
const ports = { nginx: 18_481, bare: 18_482, full: 18_483 };

/** A policy whose buckets never empty at benchmark rates: the cost of evaluating it, not of refusing. */
const FULL_POLICY = `
limits:
  - name: read
    methods: [GET, HEAD]
    per_ip: { rate: 1000000/s, burst: 1000000 }
    per_prefix: { rate: 1000000/s, burst: 1000000 }
  - name: pages
    methods: [GET]
    paths: ["/", "/index.php", "/wp-content/*"]
    per_ip: { rate: 1000000/s, burst: 1000000 }
    per_prefix: { rate: 1000000/s, burst: 1000000 }
  - name: site
    methods: ["*"]
    per_ip: { rate: 1000000/s, burst: 1000000 }
    per_prefix: { rate: 1000000/s, burst: 1000000 }
  - name: write
    methods: [POST, PUT, PATCH, DELETE]
    per_ip: { rate: 1/s, burst: 20 }
  - name: login
    methods: [POST]
    paths: ["/wp-login.php"]
    per_ip: { rate: 5/min, burst: 5 }
block:
  - path: /xmlrpc.php
  - path_prefix: /wp-admin/install
  - path_regex: "\\\\.(git|env|sql)(/|$)"
`;

/** The body of nginx's http block: one limit_req zone that never triggers. */
const NGINX_HTTP = (originPort: number) => `
  limit_req_zone $binary_remote_addr zone=ip:64m rate=1000000r/s;
  upstream origin { server 127.0.0.1:${originPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${ports.nginx};
    location / {
      limit_req zone=ip burst=1000000 nodelay;
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }
  }
`;

const portcullisPolicy = (dir: string, originPort: number, port: number, adminPort: number, body: string) =>
  `listen: "127.0.0.1:${port}"\nupstream: "http://127.0.0.1:${originPort}"\nstate_dir: "${dir}/state-${port}"\nadmin: { listen: "127.0.0.1:${adminPort}" }\nescalation: { enabled: false }\nconcurrency: { upstream_max: 64, per_client_max: 64 }\n${body}`;

interface Row {
  name: string;
  reqPerSec: number;
  minReqPerSec: number;
  maxReqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  errors: number;
}

/** Runs every configuration in front of the origin on `originPort`, interleaved; returns a row per configuration. */
async function measure(originName: string, originPort: number, path: string, dir: string): Promise<Row[]> {
  const children: { stop(): Promise<void> }[] = [];
  try {
    /** A configuration under test: `start()` readies it for one measured run. */
    interface Target {
      name: string;
      url: string;
      start(): Promise<{ pids(): number[]; stop(): Promise<void> }>;
    }
    const persistent = (pids: () => number[]) => async () => ({ pids, stop: async () => {} });
    const targets: Target[] = [{ name: `direct to ${originName}`, url: `http://127.0.0.1:${originPort}${path}`, start: persistent(() => []) }];
    if (hasTool('nginx')) {
      const nginx = await startNginx(dir, ports.nginx, NGINX_HTTP(originPort));
      children.push(nginx);
      targets.push({ name: 'nginx limit_req', url: `http://127.0.0.1:${ports.nginx}${path}`, start: persistent(() => nginx.pids()) });
    } else {
      console.log('bench: nginx is not installed, so the nginx limit_req peer is skipped. Install it with: sudo apt-get install nginx');
    }
    // Origin and nginx run throughout; each portcullis run starts its own process.
    const longRunning = [...targets];
    for (const [name, port, adminPort, body] of [
      ['portcullis, no policy', ports.bare, 19_482, 'limits: []\n'],
      ['portcullis, full policy', ports.full, 19_483, FULL_POLICY],
    ] as const) {
      const file = join(dir, `policy-${port}.yaml`);
      await writeFile(file, portcullisPolicy(dir, originPort, port, adminPort, body));
      const url = `http://127.0.0.1:${port}${path}`;
      // A fresh process per run, alone on its CPU: with two proxies kept
      // running side by side, whichever started first measured ~20 % slower
      // even with identical policies.
      targets.push({
        name,
        url,
        async start() {
          const proxy = startChild(...pinned(1, process.execPath, [CLI, 'serve', '--config', file]), { env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' } });
          await waitForHttp(`http://127.0.0.1:${port}/`);
          await runWrk({ url, connections, durationS: 2, cpu: 0 });
          return { pids: () => [proxy.child.pid as number], stop: () => proxy.stop() };
        },
      });
    }

    // Warm-up of the long-running ones (JIT, connection pools); a proxy warms up at each start.
    for (const target of longRunning) await runWrk({ url: target.url, connections, durationS: 2, cpu: 0 });

    const runs = new Map<string, (WrkRun & { cpuUsPerRequest: number })[]>(targets.map((target) => [target.name, []]));
    for (let round = 1; round <= rounds; round++) {
      // Each round starts one configuration later (A B C D, B C D A, …), so no
      // configuration always runs right after the same one.
      const shift = (round - 1) % targets.length;
      for (const target of [...targets.slice(shift), ...targets.slice(0, shift)]) {
        const running = await target.start();
        try {
          const pids = running.pids();
          const before = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
          const run = await runWrk({ url: target.url, connections, durationS, cpu: 0 });
          const used = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - before;
          runs.get(target.name)?.push({ ...run, cpuUsPerRequest: pids.length === 0 ? Number.NaN : (used / run.requests) * 1e6 });
          console.log(`${originName}, round ${round}/${rounds}, ${target.name}: ${run.reqPerSec.toFixed(0)} req/s, p99 ${run.p99Ms.toFixed(2)} ms${run.errors > 0 ? `, ${run.errors} errors` : ''}`);
        } finally {
          await running.stop();
        }
      }
    }
    return targets.map((target) => {
      const list = runs.get(target.name) ?? [];
      const rps = list.map((run) => run.reqPerSec);
      return {
        name: target.name,
        reqPerSec: median(rps),
        minReqPerSec: Math.min(...rps),
        maxReqPerSec: Math.max(...rps),
        p50Ms: median(list.map((run) => run.p50Ms)),
        p99Ms: median(list.map((run) => run.p99Ms)),
        cpuUsPerRequest: median(list.map((run) => run.cpuUsPerRequest)),
        errors: list.reduce((sum, run) => sum + run.errors, 0),
      };
    });
  } finally {
    for (const child of children.reverse()) await child.stop();
  }
}

function print(title: string, rows: Row[]): void {
  const direct = rows[0]?.reqPerSec ?? Number.NaN;
  printTable(
    title,
    ['configuration', 'req/s', 'min–max', '× direct', 'p50 ms', 'p99 ms', 'CPU µs/req', 'errors'],
    rows.map((row) => [
      row.name,
      row.reqPerSec.toFixed(0),
      `${row.minReqPerSec.toFixed(0)}–${row.maxReqPerSec.toFixed(0)}`,
      (row.reqPerSec / direct).toFixed(2),
      row.p50Ms.toFixed(2),
      row.p99Ms.toFixed(2),
      Number.isNaN(row.cpuUsPerRequest) ? '-' : row.cpuUsPerRequest.toFixed(1),
      String(row.errors),
    ]),
  );
}

const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-load-'));
const origin = startChild(...pinned(0, process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'fast-origin.ts'), String(ORIGIN_PORT)]));
let apache: ApacheHandle | null = null;
try {
  await waitForHttp(`http://127.0.0.1:${ORIGIN_PORT}/`);
  const fast = await measure('fast origin', ORIGIN_PORT, '/', dir);
  await origin.stop();
  apache = await startApache();
  const behindApache = await measure('Apache', apache.port, '/index.html', dir);

  const env = environment();
  const how = `node ${env.node}, ${env.cpu} (${env.cores} cores), wrk -t1 -c${connections} ${durationS}s, median of ${rounds} interleaved rounds`;
  print(`clean traffic, fast origin: ${how}`, fast);
  print(`clean traffic, Apache 2.4 static file as the origin: ${how}`, behindApache);
  const byName = (name: string) => fast.find((row) => row.name === name);
  const bare = byName('portcullis, no policy');
  const full = byName('portcullis, full policy');
  const nginx = byName('nginx limit_req');
  const targetsMet = {
    fullPolicyCostPct: bare && full ? (1 - full.reqPerSec / bare.reqPerSec) * 100 : null,
    vsNginxReqPerSec: nginx && full ? full.reqPerSec / nginx.reqPerSec : null,
    cpuUsPerRequest: full?.cpuUsPerRequest ?? null,
  };
  console.log(
    `\ntargets (fast origin): full policy costs ${targetsMet.fullPolicyCostPct?.toFixed(1)} % throughput vs no policy (target ≤ 5 %); ` +
      `portcullis/nginx req/s ${targetsMet.vsNginxReqPerSec?.toFixed(2) ?? 'n/a'} (target ≥ 0.75); CPU ${targetsMet.cpuUsPerRequest?.toFixed(1)} µs/request (target ≤ 50)`,
  );
  console.log(`wrote ${await writeResult('load', { rounds, durationS, connections, results: fast, apacheResults: behindApache, targets: targetsMet })}`);
} finally {
  await origin.stop();
  await apache?.stop();
  await rm(dir, { recursive: true, force: true });
}

