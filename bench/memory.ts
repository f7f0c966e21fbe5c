/**
 * Memory benchmark: a million distinct clients (X-Forwarded-For from a
 * trusted proxy, so one wrk can be a million clients) through portcullis with
 * the shipped rate limits, with `clients.max_tracked` at 1M and at 100k; RSS
 * of the proxy process before and after. At the cap the table must stay flat.
 *
 *   npm run build && npx tsx bench/memory.ts [--clients 1000000]
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { environment, printTable, writeResult } from './support/bench-report.js';
import { pinned, requireTool, rssBytes, startChild, waitForHttp } from './support/bench-tools.js';
import { runWrk } from './support/wrk.js';

const { values } = parseArgs({ options: { clients: { type: 'string', default: '1000000' } } });
const clients = Number(values.clients);
requireTool('wrk', 'wrk');
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const SCRIPT = join(import.meta.dirname, 'support', 'distinct-clients.lua');
const ORIGIN_PORT = 18_490;
const PROXY_PORT = 18_491;
const ADMIN_PORT = 19_491;
/** At most this many wrk chunks, so a slow machine cannot run forever. */
const MAX_CHUNKS = 40;

/** Addresses with bucket state and the V8 heap in use, from the proxy's own /metrics. */
async function scrape(): Promise<{ tracked: number; heapUsed: number }> {
  const text = await (await fetch(`http://127.0.0.1:${ADMIN_PORT}/metrics`)).text();
  const sample = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN);
  return { tracked: sample(/^portcullis_tracked_clients\{table="ip"\} (\d+)/m), heapUsed: sample(/^nodejs_heap_size_used_bytes (\d+)/m) };
}

const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-memory-'));
const origin = startChild(...pinned(0, process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'fast-origin.ts'), String(ORIGIN_PORT)]));
const results: { maxTracked: number; clients: number; trackedAfter: number; rssBeforeMb: number; rssAfterMb: number; heapUsedMb: number; bytesPerClient: number; seconds: number; rssHalfwayMb: number; series: { clientsSent: number; rssMb: number }[] }[] = [];
try {
  await waitForHttp(`http://127.0.0.1:${ORIGIN_PORT}/`);
  for (const maxTracked of [1_000_000, 100_000]) {
    const file = join(dir, `policy-${maxTracked}.yaml`);
    await writeFile(
      file,
      `listen: "127.0.0.1:${PROXY_PORT}"\nupstream: "http://127.0.0.1:${ORIGIN_PORT}"\nstate_dir: "${dir}/state"\nadmin: { listen: "127.0.0.1:${ADMIN_PORT}" }\n` +
        `clients: { trusted_proxies: ["127.0.0.1"], max_tracked: ${maxTracked} }\nescalation: { enabled: false }\n` +
        `limits:\n  - name: read\n    methods: [GET, HEAD]\n    per_ip: { rate: 10/s, burst: 200 }\n    per_prefix: { rate: 50/s, burst: 600 }\n`,
    );
    const proxy = startChild(...pinned(1, process.execPath, [CLI, 'serve', '--config', file]), { env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' } });
    try {
      await waitForHttp(`http://127.0.0.1:${PROXY_PORT}/`);
      const pid = proxy.child.pid as number;
      const rssBefore = rssBytes(pid);
      const started = Date.now();
      let sent = 0;
      const series: { clientsSent: number; rssMb: number }[] = [];
      for (let chunk = 0; chunk < MAX_CHUNKS && sent < clients; chunk++) {
        // The offset makes each chunk continue where the last one stopped: every request a new client.
        const run = await runWrk({ url: `http://127.0.0.1:${PROXY_PORT}/`, connections: 50, durationS: 10, cpu: 0, script: `${SCRIPT}`, args: [String(sent)] });
        sent += run.requests;
        series.push({ clientsSent: sent, rssMb: Math.round(rssBytes(pid) / 1048576) });
        process.stdout.write(`max_tracked ${maxTracked}: ${sent} clients sent, RSS ${(rssBytes(pid) / 1048576).toFixed(0)} MB\n`);
      }
      const { tracked, heapUsed } = await scrape();
      const rssAfter = rssBytes(pid);
      results.push({
        maxTracked,
        clients: sent,
        trackedAfter: tracked,
        rssBeforeMb: rssBefore / 1048576,
        rssAfterMb: rssAfter / 1048576,
        heapUsedMb: heapUsed / 1048576,
        bytesPerClient: (rssAfter - rssBefore) / Math.min(sent, maxTracked),
        // RSS after half the clients against after all of them: flat once the cap is reached.
        rssHalfwayMb: series.find((point) => point.clientsSent >= sent / 2)?.rssMb ?? Number.NaN,
        series,
        seconds: (Date.now() - started) / 1000,
      });
    } finally {
      await proxy.stop();
    }
  }
  const env = environment();
  printTable(
    `memory at many clients: node ${env.node}, ${env.cpu}, shipped read rule (per_ip + per_prefix), one request per client`,
    ['max_tracked', 'clients sent', 'tracked after', 'RSS before MB', 'RSS halfway MB', 'RSS after MB', 'V8 heap used MB', 'RSS bytes/tracked client'],
    results.map((row) => [String(row.maxTracked), String(row.clients), String(row.trackedAfter), row.rssBeforeMb.toFixed(0), String(row.rssHalfwayMb), row.rssAfterMb.toFixed(0), row.heapUsedMb.toFixed(0), row.bytesPerClient.toFixed(0)]),
  );
  console.log(`\ntarget: 1M distinct clients in ≤ 300 MB RSS, flat at the max_tracked cap`);
  console.log(`wrote ${await writeResult('memory', { results })}`);
} finally {
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
}
