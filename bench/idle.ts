/**
 * What an idle proxy costs: CPU of portcullis (shipped policy) and of nginx
 * with a `limit_req` zone, neither receiving any request, over a window after
 * both have settled (V8 runs a few memory-reducing collections in the first
 * seconds after start). Reports CPU seconds per window and % of a core.
 * Prints a table and writes bench/results/idle.json.
 *
 *   npm run build && npx tsx bench/idle.ts [--settle 30] [--window 30]
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse, stringify } from 'yaml';
import { environment, printTable, writeResult } from './support/bench-report.js';
import { cpuSeconds, hasTool, startChild, waitForHttp } from './support/bench-tools.js';
import { startNginx } from './support/nginx-peer.js';

const { values } = parseArgs({ options: { settle: { type: 'string', default: '30' }, window: { type: 'string', default: '30' } } });
const settleS = Number(values.settle);
const windowS = Number(values.window);
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-idle-'));
const sleep = (s: number) => new Promise((resolve) => setTimeout(resolve, s * 1000));
try {
  const policy = join(dir, 'policy.yaml');
  // The shipped policy with this run's addresses: parsed and written back, so every other key is as shipped.
  const shipped = parse(readFileSync(join(import.meta.dirname, '..', 'config', 'portcullis.yaml'), 'utf8')) as Record<string, unknown>;
  await writeFile(policy, stringify({ ...shipped, listen: '127.0.0.1:18781', upstream: 'http://127.0.0.1:18780', state_dir: `${dir}/state`, admin: { ...(shipped.admin as object), listen: '127.0.0.1:18782' } }));
  const proxy = startChild(process.execPath, [CLI, 'serve', '--config', policy], { env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' } });
  const peers: { name: string; pids: () => number[]; stop: () => Promise<void> }[] = [];
  try {
    await waitForHttp('http://127.0.0.1:18782/healthz');
    peers.push({ name: 'portcullis, shipped policy', pids: () => [proxy.child.pid as number], stop: () => proxy.stop() });
    if (hasTool('nginx')) {
      const nginx = await startNginx(dir, 18_783, 'limit_req_zone $binary_remote_addr zone=ip:64m rate=20r/s;\nserver { listen 127.0.0.1:18783; location / { limit_req zone=ip burst=40 nodelay; proxy_pass http://127.0.0.1:18780; } }');
      peers.push({ name: 'nginx limit_req', pids: () => nginx.pids(), stop: () => nginx.stop() });
    } else {
      console.log('bench/idle: nginx is not installed, so its row is left out (sudo apt-get install nginx)');
    }
    console.log(`bench/idle: settling for ${settleS} s, then measuring ${windowS} s …`);
    await sleep(settleS);
    const before = peers.map((peer) => peer.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0));
    await sleep(windowS);
    const rows = peers.map((peer, index) => {
      const used = peer.pids().reduce((sum, pid) => sum + cpuSeconds(pid), 0) - (before[index] as number);
      return { name: peer.name, cpuSeconds: used, percentOfCore: (used / windowS) * 100 };
    });
    const env = environment();
    printTable(`idle, no requests: ${windowS} s after ${settleS} s of settling; ${env.cpu}, ${env.node}`, ['', 'CPU s', '% of a core'], rows.map((row) => [row.name, row.cpuSeconds.toFixed(2), row.percentOfCore.toFixed(2)]));
    console.log(`wrote ${await writeResult('idle', { settleS, windowS, results: rows })}`);
  } finally {
    for (const peer of peers) await peer.stop();
    await proxy.stop();
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
