/**
 * What a request costs at the rates a small site really sees: 20 visitors on
 * keep-alive connections, each one request a second, for --duration seconds,
 * through portcullis (shipped policy) in front of the fast origin, and
 * through nginx with `limit_req` when it is installed. Reports CPU
 * milliseconds per request of the proxy (origin excluded) and the idle cost
 * it includes. The clients run in this process, on CPU 0; the proxy on CPU 1.
 *
 *   npm run build && npx tsx bench/human-rate.ts [--duration 60] [--clients 20]
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

const { values } = parseArgs({ options: { duration: { type: 'string', default: '60' }, clients: { type: 'string', default: '20' } } });
const durationS = Number(values.duration);
const clientCount = Number(values.clients);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const ORIGIN = 18_880;
const PROXY = 18_881;
const NGINX = 18_883;

/** `clientCount` keep-alive clients, each one GET a second (staggered), for `durationS`; resolves with the answers counted. */
async function visitors(port: number): Promise<{ ok: number; other: number }> {
  const counts = { ok: 0, other: 0 };
  await Promise.all(
    Array.from({ length: clientCount }, async (_, index) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1, localAddress: `127.30.0.${index + 1}` });
      await new Promise((resolve) => setTimeout(resolve, (index * 1000) / clientCount));
      for (let second = 0; second < durationS; second++) {
        const sent = Date.now();
        const status = await new Promise<number>((resolve) => {
          const req = http.get({ host: '127.0.0.1', port, path: `/page-${second}`, agent }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          });
          req.on('error', () => resolve(0));
        });
        if (status === 200) counts.ok++;
        else counts.other++;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, 1000 - (Date.now() - sent))));
      }
      agent.destroy();
    }),
  );
  return counts;
}

const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-human-'));
const origin = startChild(...pinned(0, process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'fast-origin.ts'), String(ORIGIN)]));
const rows: { name: string; requests: number; errors: number; cpuMsPerRequest: number; cpuSeconds: number }[] = [];
try {
  await waitForHttp(`http://127.0.0.1:${ORIGIN}/`);
  const shipped = parse(readFileSync(join(import.meta.dirname, '..', 'config', 'portcullis.yaml'), 'utf8')) as Record<string, unknown>;
  const policy = join(dir, 'policy.yaml');
  await writeFile(policy, stringify({ ...shipped, listen: `127.0.0.1:${PROXY}`, upstream: `http://127.0.0.1:${ORIGIN}`, state_dir: `${dir}/state`, admin: { ...(shipped.admin as object), listen: '127.0.0.1:18882' } }));
  const proxy = startChild(...pinned(1, process.execPath, [CLI, 'serve', '--config', policy]), { env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' } });
  const targets: { name: string; port: number; pids: () => number[]; stop: () => Promise<void> }[] = [];
  try {
    await waitForHttp(`http://127.0.0.1:${PROXY}/`);
    targets.push({ name: 'portcullis, shipped policy', port: PROXY, pids: () => [proxy.child.pid as number], stop: () => proxy.stop() });
    if (hasTool('nginx')) {
      const nginx = await startNginx(dir, NGINX, `limit_req_zone $binary_remote_addr zone=ip:64m rate=20r/s;\nupstream origin { server 127.0.0.1:${ORIGIN}; keepalive 16; }\nserver { listen 127.0.0.1:${NGINX}; location / { limit_req zone=ip burst=40 nodelay; proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }`);
      targets.push({ name: 'nginx limit_req', port: NGINX, pids: () => nginx.pids(), stop: () => nginx.stop() });
    } else {
      console.log('bench/human-rate: nginx is not installed, so its row is left out (sudo apt-get install nginx)');
    }
    // Past V8's start-up collections (see bench/idle.ts) before anything is measured.
    await new Promise((resolve) => setTimeout(resolve, 20_000));
    for (const target of targets) {
      const before = target.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0);
      const counts = await visitors(target.port);
      const used = target.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0) - before;
      const requests = counts.ok + counts.other;
      rows.push({ name: target.name, requests, errors: counts.other, cpuSeconds: used, cpuMsPerRequest: (used / requests) * 1000 });
      console.log(`${target.name}: ${requests} requests, ${used.toFixed(2)} CPU s, ${((used / requests) * 1000).toFixed(3)} ms/request`);
    }
  } finally {
    for (const target of targets) await target.stop();
    await proxy.stop();
  }
  const env = environment();
  printTable(`human rates: ${clientCount} keep-alive clients, 1 request/s each, ${durationS} s; ${env.cpu}, ${env.node}`, ['', 'requests', 'not 200', 'CPU s', 'CPU ms/request'], rows.map((row) => [row.name, String(row.requests), String(row.errors), row.cpuSeconds.toFixed(2), row.cpuMsPerRequest.toFixed(3)]));
  console.log(`target: ≤ 0.3 ms of CPU per request\nwrote ${await writeResult('human-rate', { durationS, clients: clientCount, results: rows })}`);
} finally {
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
}
