/**
 * What a request costs at the rates a small site really sees: 20 visitors on
 * keep-alive connections, each one request a second, through portcullis
 * (shipped policy), through a bare undici proxy (the floor a Node proxy can
 * reach) and through nginx with `limit_req` when it is installed, each in
 * front of the fast origin. Each proxy is measured for --windows windows of
 * --duration seconds of that traffic in a row: the first window is a proxy
 * fresh from start (V8 has not optimised the request path yet), the last one
 * a proxy that has served the same traffic for minutes. Reports CPU
 * milliseconds per request of the proxy (origin excluded, every thread of
 * the process counted) per window. The clients run in this process, on CPU 0;
 * the proxies on CPU 1, one at a time.
 *
 *   npm run build && npx tsx bench/human-rate.ts [--duration 60] [--windows 4] [--clients 20]
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { environment, printTable, writeResult } from './support/bench-report.js';
import { cpuSeconds, hasTool, pinned, startChild, waitForHttp } from './support/bench-tools.js';
import { startNginx } from './support/nginx-peer.js';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '60' }, windows: { type: 'string', default: '4' }, clients: { type: 'string', default: '20' } } });
const durationS = Number(values.duration);
const windowCount = Number(values.windows);
const clientCount = Number(values.clients);
if (!(durationS > 0) || !Number.isInteger(windowCount) || windowCount < 1 || !Number.isInteger(clientCount) || clientCount < 1 || clientCount > 250) {
  console.error('bench/human-rate: --duration must be a positive number of seconds, --windows a whole number ≥ 1, --clients a whole number from 1 to 250');
  process.exit(2);
}
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const ORIGIN = 18_880;
const PROXY = 18_881;
const NGINX = 18_883;
const BARE = 18_884;

/** Answers counted so far by the visitors. */
interface Counts {
  ok: number;
  other: number;
}

/** `clientCount` keep-alive clients, each one GET a second (staggered), for `seconds`; counts answers into `counts` as they come. */
async function visitors(port: number, seconds: number, counts: Counts): Promise<void> {
  await Promise.all(
    Array.from({ length: clientCount }, async (_, index) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: `127.30.0.${index + 1}` });
      await new Promise((resolve) => setTimeout(resolve, (index * 1000) / clientCount));
      for (let second = 0; second < seconds; second++) {
        const sent = Date.now();
        const status = await new Promise<number>((resolve) => {
          const req = http.get({ host: '127.0.0.1', port, path: `/page-${second}`, agent, timeout: 5_000 }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('timeout', () => req.destroy());
          req.on('error', () => resolve(0));
        });
        if (status === 200) counts.ok++;
        else counts.other++;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (Date.now() - sent))));
      }
      agent.destroy();
    }),
  );
}

/** One window of one proxy: requests answered in it and the proxy's CPU over it. */
interface Window {
  requests: number;
  errors: number;
  cpuSeconds: number;
  cpuMsPerRequest: number;
}

/** Runs the visitors against `port` for all windows in a row, reading the proxy's CPU at each window's end. */
async function measureWindows(port: number, pids: () => number[]): Promise<Window[]> {
  const cpu = () => pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const counts: Counts = { ok: 0, other: 0 };
  const windows: Window[] = [];
  let last = { cpu: cpu(), ok: 0, other: 0 };
  const sampler = setInterval(() => {
    const now = { cpu: cpu(), ok: counts.ok, other: counts.other };
    const requests = now.ok + now.other - last.ok - last.other;
    windows.push({ requests, errors: now.other - last.other, cpuSeconds: now.cpu - last.cpu, cpuMsPerRequest: requests > 0 ? ((now.cpu - last.cpu) / requests) * 1000 : Number.NaN });
    console.log(`  window ${windows.length}/${windowCount}: ${requests} requests, ${(now.cpu - last.cpu).toFixed(2)} CPU s`);
    last = now;
    if (windows.length === windowCount) clearInterval(sampler);
  }, durationS * 1000);
  // The visitors run a second past the last window so its requests are all in flight when it is read.
  await visitors(port, durationS * windowCount + 1, counts);
  clearInterval(sampler);
  return windows;
}

const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-human-'));
const origin = startChild(...pinned(0, process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'fast-origin.ts'), String(ORIGIN)]));
const rows: { name: string; windows: Window[] }[] = [];
const stops: (() => Promise<void>)[] = [];
try {
  await waitForHttp(`http://127.0.0.1:${ORIGIN}/`);
  const shipped = parse(readFileSync(join(import.meta.dirname, '..', 'config', 'portcullis.yaml'), 'utf8')) as Record<string, unknown>;
  const policy = join(dir, 'policy.yaml');
  await writeFile(policy, stringify({ ...shipped, listen: `127.0.0.1:${PROXY}`, upstream: `http://127.0.0.1:${ORIGIN}`, state_dir: `${dir}/state`, admin: { ...(shipped.admin as object), listen: '127.0.0.1:18882' } }));
  const targets: { name: string; port: number; pids: () => number[] }[] = [];
  const proxy = startChild(...pinned(1, process.execPath, [CLI, 'serve', '--config', policy]), { env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' } });
  stops.push(() => proxy.stop());
  const bare = startChild(...pinned(1, process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'bare-undici-proxy.ts'), String(BARE), String(ORIGIN)]));
  stops.push(() => bare.stop());
  await waitForHttp(`http://127.0.0.1:${PROXY}/`);
  await waitForHttp(`http://127.0.0.1:${BARE}/`);
  targets.push({ name: 'portcullis, shipped policy', port: PROXY, pids: () => [proxy.child.pid as number] });
  targets.push({ name: 'bare undici proxy', port: BARE, pids: () => [bare.child.pid as number] });
  if (hasTool('nginx')) {
    const nginx = await startNginx(dir, NGINX, `limit_req_zone $binary_remote_addr zone=ip:64m rate=20r/s;\nupstream origin { server 127.0.0.1:${ORIGIN}; keepalive 16; }\nserver { listen 127.0.0.1:${NGINX}; location / { limit_req zone=ip burst=40 nodelay; proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }`);
    stops.push(() => nginx.stop());
    targets.push({ name: 'nginx limit_req', port: NGINX, pids: () => nginx.pids() });
  } else {
    console.log('bench/human-rate: nginx is not installed, so its row is left out (sudo apt-get install nginx)');
  }
  // Past V8's start-up collections (see bench/idle.ts) before anything is measured.
  console.log(`bench/human-rate: settling for 20 s, then ${windowCount} × ${durationS} s per proxy (about ${Math.ceil((20 + targets.length * (windowCount * durationS + 2)) / 60)} minutes)`);
  await new Promise((resolve) => setTimeout(resolve, 20_000));
  for (const target of targets) {
    console.log(`${target.name}:`);
    rows.push({ name: target.name, windows: await measureWindows(target.port, target.pids) });
  }
  const env = environment();
  const windowHeads = Array.from({ length: windowCount }, (_, i) => `window ${i + 1}, ms/req`);
  printTable(
    `human rates: ${clientCount} keep-alive clients, 1 request/s each, ${windowCount} windows of ${durationS} s in a row; CPU ms per request; ${env.cpu}, ${env.node}`,
    ['', 'requests', 'not 200', ...windowHeads],
    rows.map((row) => [row.name, String(row.windows.reduce((sum, w) => sum + w.requests, 0)), String(row.windows.reduce((sum, w) => sum + w.errors, 0)), ...row.windows.map((w) => w.cpuMsPerRequest.toFixed(3))]),
  );
  const cost = (name: string, index: number) => rows.find((row) => row.name.startsWith(name))?.windows[index]?.cpuMsPerRequest;
  const ratios = (index: number) => {
    const ours = cost('portcullis', index);
    const peerBare = cost('bare', index);
    const peerNginx = cost('nginx', index);
    const over = (peer: number | undefined) => (ours !== undefined && peer !== undefined && peer > 0 ? ours / peer : null);
    return { portcullisMsPerRequest: ours, vsBare: over(peerBare), vsNginx: over(peerNginx) };
  };
  const first = ratios(0);
  const lastWindow = ratios(windowCount - 1);
  const say = (r: typeof first) => `${r.portcullisMsPerRequest?.toFixed(3)} ms/request, ${r.vsBare?.toFixed(2) ?? 'n/a'} × bare, ${r.vsNginx?.toFixed(2) ?? 'n/a'} × nginx`;
  console.log(`target: ≤ 0.3 ms of CPU per request. First window: ${say(first)}; last window: ${say(lastWindow)}`);
  console.log(`wrote ${await writeResult('human-rate', { durationS, windows: windowCount, clients: clientCount, results: rows, targets: { firstWindow: first, lastWindow } })}`);
} finally {
  for (const stop of stops.reverse()) await stop();
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
}
