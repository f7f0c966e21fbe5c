/**
 * Load benchmark, clean traffic: a fast origin, then Apache, each reached directly,
 * through nginx with a `limit_req` policy that never triggers, through a
 * bare undici `Pool.stream` proxy (the floor a Node proxy can reach), and
 * through portcullis with no policy (pure forwarding) and with the shipped
 * policy whose rates never refuse, access log off and on. Configurations are interleaved, each round rotated (A B C D, B C D A, …), and medians
 * reported, because the machine is shared and noisy. wrk runs on CPU 0, each
 * proxy on CPU 1 (taskset), loopback only, every run bounded.
 *
 * Each proxy process is warmed up for `--warmup` seconds before it is measured:
 * V8 goes on optimising the request path for 10–15 s of full load (a
 * `--trace-opt` count of optimised functions stops growing after that), on
 * threads whose CPU the measured run would otherwise be charged for.
 *
 *   npm run build && npx tsx bench/load.ts [--rounds 7] [--duration 5] [--warmup 10] [--connections 50] [--skip-apache]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { startApache, type ApacheHandle } from '../test/support/apache.js';
import { environment, median, printTable, writeResult } from './support/bench-report.js';
import { cpuSeconds, hasTool, pinned, requireTool, rssBytes, startChild, waitForHttp } from './support/bench-tools.js';
import { startNginx } from './support/nginx-peer.js';
import { unrefusingShippedPolicy } from './support/unrefusing-shipped-policy.js';
import { runWrk, type WrkRun } from './support/wrk.js';

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '7' }, duration: { type: 'string', default: '5' }, warmup: { type: 'string', default: '10' }, connections: { type: 'string', default: '50' }, 'skip-apache': { type: 'boolean', default: false } },
});
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const connections = Number(values.connections);
requireTool('wrk', 'wrk');
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');

const ORIGIN_PORT = 18_480;
const ports = { nginx: 18_481, bare: 18_482, none: 18_483, shipped: 18_484, logged: 18_485 };
const BARE = 'bare undici proxy';
const SHIPPED = 'portcullis, shipped policy';
const SHIPPED_LOGGED = 'portcullis, shipped policy + access log';

/** The shipped policy with rates no benchmark reaches, on `port`, in front of `originPort`, with or without an access log. */
async function shippedPolicy(dir: string, originPort: number, port: number, adminPort: number, accessLog: boolean): Promise<string> {
  return stringify(
    await unrefusingShippedPolicy({
      listen: `127.0.0.1:${port}`,
      upstream: `http://127.0.0.1:${originPort}`,
      state_dir: `${dir}/state-${port}`,
      admin: { listen: `127.0.0.1:${adminPort}` },
      ...(accessLog ? { access_log: `${dir}/access-${port}.log` } : {}),
    }),
  );
}

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

/** Pure forwarding: no rule, no escalation. */
const noPolicy = (dir: string, originPort: number, port: number, adminPort: number) =>
  `listen: "127.0.0.1:${port}"\nupstream: "http://127.0.0.1:${originPort}"\nstate_dir: "${dir}/state-${port}"\nadmin: { listen: "127.0.0.1:${adminPort}" }\nescalation: { enabled: false }\nconcurrency: { upstream_max: 64, per_client_max: 64 }\nlimits: []\n`;

interface Row {
  name: string;
  reqPerSec: number;
  minReqPerSec: number;
  maxReqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  /** Resident memory right after the measured run (all processes of the configuration). */
  rssMb: number;
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
    // Origin and nginx run throughout; each proxy run starts its own process.
    const longRunning = [...targets];
    const proxies: { name: string; port: number; command(): Promise<[string, string[]]> }[] = [
      { name: BARE, port: ports.bare, command: async () => [process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'bare-undici-proxy.ts'), String(ports.bare), String(originPort)]] },
      { name: 'portcullis, no policy', port: ports.none, command: async () => portcullis(ports.none, noPolicy(dir, originPort, ports.none, 19_482)) },
      { name: SHIPPED, port: ports.shipped, command: async () => portcullis(ports.shipped, await shippedPolicy(dir, originPort, ports.shipped, 19_483, false)) },
      { name: SHIPPED_LOGGED, port: ports.logged, command: async () => portcullis(ports.logged, await shippedPolicy(dir, originPort, ports.logged, 19_484, true)) },
    ];
    async function portcullis(port: number, policy: string): Promise<[string, string[]]> {
      const file = join(dir, `policy-${port}.yaml`);
      await writeFile(file, policy);
      return [process.execPath, [CLI, 'serve', '--config', file]];
    }
    for (const proxy of proxies) {
      const url = `http://127.0.0.1:${proxy.port}${path}`;
      // A fresh process per run, alone on its CPU: with two proxies kept
      // running side by side, whichever started first measured ~20 % slower
      // even with identical policies.
      targets.push({
        name: proxy.name,
        url,
        async start() {
          const [command, args] = await proxy.command();
          const child = startChild(...pinned(1, command, args), { env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' } });
          await waitForHttp(`http://127.0.0.1:${proxy.port}/`);
          await runWrk({ url, connections, durationS: warmupS, cpu: 0 });
          return { pids: () => [child.child.pid as number], stop: () => child.stop() };
        },
      });
    }

    // Warm-up of the long-running ones (JIT, connection pools); a proxy warms up at each start.
    for (const target of longRunning) await runWrk({ url: target.url, connections, durationS: 2, cpu: 0 });

    const runs = new Map<string, (WrkRun & { cpuUsPerRequest: number; rssMb: number })[]>(targets.map((target) => [target.name, []]));
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
          const rssMb = pids.length === 0 ? Number.NaN : pids.reduce((sum, pid) => sum + rssBytes(pid), 0) / 2 ** 20;
          runs.get(target.name)?.push({ ...run, cpuUsPerRequest: pids.length === 0 ? Number.NaN : (used / run.requests) * 1e6, rssMb });
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
        rssMb: median(list.map((run) => run.rssMb)),
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
    ['configuration', 'req/s', 'min–max', '× direct', 'p50 ms', 'p99 ms', 'CPU µs/req', 'RSS after, MB', 'errors'],
    rows.map((row) => [
      row.name,
      row.reqPerSec.toFixed(0),
      `${row.minReqPerSec.toFixed(0)}–${row.maxReqPerSec.toFixed(0)}`,
      (row.reqPerSec / direct).toFixed(2),
      row.p50Ms.toFixed(2),
      row.p99Ms.toFixed(2),
      Number.isNaN(row.cpuUsPerRequest) ? '-' : row.cpuUsPerRequest.toFixed(1),
      Number.isNaN(row.rssMb) ? '-' : row.rssMb.toFixed(0),
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
  let behindApache: Row[] = [];
  if (!values['skip-apache']) {
    apache = await startApache();
    behindApache = await measure('Apache', apache.port, '/index.html', dir);
  }

  const env = environment();
  const how = `node ${env.node}, ${env.cpu} (${env.cores} cores), wrk -t1 -c${connections} ${durationS}s after ${warmupS}s of warm-up, median of ${rounds} interleaved rounds`;
  print(`clean traffic, fast origin: ${how}`, fast);
  if (behindApache.length > 0) print(`clean traffic, Apache 2.4 static file as the origin: ${how}`, behindApache);
  const byName = (name: string) => fast.find((row) => row.name === name);
  const bare = byName(BARE);
  const nginx = byName('nginx limit_req');
  /** The issue's targets for one portcullis configuration, as ratios to its peers in this run. */
  const ratios = (row: Row | undefined) =>
    row && bare
      ? {
          cpuPerRequestVsBare: row.cpuUsPerRequest / bare.cpuUsPerRequest,
          reqPerSecVsNginx: nginx ? row.reqPerSec / nginx.reqPerSec : null,
          p99VsBare: row.p99Ms / bare.p99Ms,
          rssMbAfter: row.rssMb,
        }
      : null;
  const targetsMet = { shipped: ratios(byName(SHIPPED)), shippedWithAccessLog: ratios(byName(SHIPPED_LOGGED)) };
  for (const [name, met] of [[SHIPPED, targetsMet.shipped], [SHIPPED_LOGGED, targetsMet.shippedWithAccessLog]] as const) {
    if (!met) continue;
    console.log(
      `targets (fast origin), ${name}: CPU/request ${met.cpuPerRequestVsBare.toFixed(2)} × bare (target ≤ 1.15); ` +
        `req/s ${met.reqPerSecVsNginx?.toFixed(2) ?? 'n/a'} × nginx (target ≥ 0.5); p99 ${met.p99VsBare.toFixed(2)} × bare (target ≤ 2); RSS after ${met.rssMbAfter.toFixed(0)} MB (target ≤ 130)`,
    );
  }
  console.log(`wrote ${await writeResult('load', { rounds, durationS, warmupS, connections, results: fast, apacheResults: behindApache, targets: targetsMet })}`);
} finally {
  await origin.stop();
  await apache?.stop();
  await rm(dir, { recursive: true, force: true });
}

