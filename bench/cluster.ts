/**
 * Cluster mode's cost: the same portcullis with `store: memory` and with
 * `store: redis` (a real redis-server on loopback) in front of a fast origin,
 * under clean load (a policy that never refuses, so every request makes the
 * shared check), then under the xmlrpc-style flood of one client against a
 * tight limit, where the node's own buckets refuse and Redis should see
 * next to nothing. Reports req/s, p50/p99, CPU µs per request of the proxy,
 * Redis's CPU, and Redis commands per second. wrk on CPU 0, the proxy on
 * CPU 1, Redis unpinned; interleaved rounds, medians.
 *
 *   npm run build && npx tsx bench/cluster.ts [--rounds 3] [--duration 5] [--connections 50]
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedis } from '../test/support/redis.js';
import { environment, median, printTable, writeResult } from './support/bench-report.js';
import { cpuSeconds, pinned, requireTool, startChild, waitForHttp } from './support/bench-tools.js';
import { runWrk } from './support/wrk.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '50' } } });
const rounds = Number(values.rounds);
const durationS = Number(values.duration);
const connections = Number(values.connections);
requireTool('wrk', 'wrk');
requireTool('redis-server', 'redis-server');
requireTool('redis-cli', 'redis-tools');
const CLI = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js');
const ORIGIN_PORT = 18_580;
const PROXY_PORT = 18_581;
const ADMIN_PORT = 19_581;

const CLEAN = `limits:
  - name: read
    methods: [GET, HEAD]
    per_ip: { rate: 1000000/s, burst: 1000000 }
    per_prefix: { rate: 1000000/s, burst: 1000000 }
escalation: { enabled: false }
`;
/** One client against 20/s: the node's own bucket refuses almost everything. */
const FLOOD = `limits:
  - name: xmlrpc
    methods: [GET]
    per_ip: { rate: 20/s, burst: 20 }
escalation: { enabled: false }
`;

interface Row {
  name: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerRequest: number;
  redisCpuUsPerRequest: number;
  redisOpsPerSec: number;
}

const redis = await startRedis();
const redisPid = Number(execFileSync('redis-cli', ['-p', String(redis.port), 'info', 'server'], { encoding: 'utf8' }).match(/process_id:(\d+)/)?.[1]);
const commands = () => Number(execFileSync('redis-cli', ['-p', String(redis.port), 'info', 'stats'], { encoding: 'utf8' }).match(/total_commands_processed:(\d+)/)?.[1]);
const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-cluster-'));
const origin = startChild(...pinned(0, process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'support', 'fast-origin.ts'), String(ORIGIN_PORT)]));
try {
  await waitForHttp(`http://127.0.0.1:${ORIGIN_PORT}/`);
  const configurations = [
    ['clean, memory store', CLEAN, 'memory'],
    ['clean, redis store', CLEAN, 'redis'],
    ['flood, memory store', FLOOD, 'memory'],
    ['flood, redis store', FLOOD, 'redis'],
  ] as const;
  const runs = new Map<string, Row[]>(configurations.map(([name]) => [name, []]));
  for (let round = 1; round <= rounds; round++) {
    const shift = (round - 1) % configurations.length;
    for (const [name, body, store] of [...configurations.slice(shift), ...configurations.slice(0, shift)]) {
      const file = join(dir, 'policy.yaml');
      const storeYaml = store === 'redis' ? `store: { type: redis, url: "${redis.url}", prefix: "bench${round}:" }\n` : '';
      await writeFile(file, `listen: "127.0.0.1:${PROXY_PORT}"\nupstream: "http://127.0.0.1:${ORIGIN_PORT}"\nstate_dir: "${dir}/state"\nadmin: { listen: "127.0.0.1:${ADMIN_PORT}" }\nconcurrency: { upstream_max: 64, per_client_max: 64 }\n${storeYaml}${body}`);
      const proxy = startChild(...pinned(1, process.execPath, [CLI, 'serve', '--config', file]), { env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' } });
      try {
        await waitForHttp(`http://127.0.0.1:${PROXY_PORT}/`, 15_000).catch(() => undefined);
        await runWrk({ url: `http://127.0.0.1:${PROXY_PORT}/`, connections, durationS: 2, cpu: 0 });
        const pid = proxy.child.pid as number;
        const [cpuBefore, redisBefore, commandsBefore] = [cpuSeconds(pid), cpuSeconds(redisPid), commands()];
        const run = await runWrk({ url: `http://127.0.0.1:${PROXY_PORT}/`, connections, durationS, cpu: 0 });
        const [cpuAfter, redisAfter, commandsAfter] = [cpuSeconds(pid), cpuSeconds(redisPid), commands()];
        const row: Row = {
          name,
          reqPerSec: run.reqPerSec,
          p50Ms: run.p50Ms,
          p99Ms: run.p99Ms,
          cpuUsPerRequest: ((cpuAfter - cpuBefore) / run.requests) * 1e6,
          redisCpuUsPerRequest: ((redisAfter - redisBefore) / run.requests) * 1e6,
          redisOpsPerSec: (commandsAfter - commandsBefore) / durationS,
        };
        runs.get(name)?.push(row);
        console.log(`round ${round}/${rounds}, ${name}: ${row.reqPerSec.toFixed(0)} req/s, p99 ${row.p99Ms.toFixed(2)} ms, ${row.cpuUsPerRequest.toFixed(1)} µs CPU/req, Redis ${row.redisOpsPerSec.toFixed(0)} commands/s`);
      } finally {
        await proxy.stop();
      }
    }
  }
  const rows = configurations.map(([name]) => {
    const list = runs.get(name) ?? [];
    const pick = (key: keyof Omit<Row, 'name'>) => median(list.map((row) => row[key]));
    return { name, reqPerSec: pick('reqPerSec'), p50Ms: pick('p50Ms'), p99Ms: pick('p99Ms'), cpuUsPerRequest: pick('cpuUsPerRequest'), redisCpuUsPerRequest: pick('redisCpuUsPerRequest'), redisOpsPerSec: pick('redisOpsPerSec') };
  });
  const env = environment();
  printTable(
    `cluster mode: node ${env.node}, ${env.cpu} (${env.cores} cores), wrk -t1 -c${connections} ${durationS}s, one client, median of ${rounds} interleaved rounds`,
    ['configuration', 'req/s', 'p50 ms', 'p99 ms', 'proxy CPU µs/req', 'Redis CPU µs/req', 'Redis commands/s'],
    rows.map((row) => [row.name, row.reqPerSec.toFixed(0), row.p50Ms.toFixed(2), row.p99Ms.toFixed(2), row.cpuUsPerRequest.toFixed(1), row.redisCpuUsPerRequest.toFixed(1), row.redisOpsPerSec.toFixed(0)]),
  );
  console.log(`wrote ${await writeResult('cluster', { rounds, durationS, connections, results: rows })}`);
} finally {
  await origin.stop();
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
}
