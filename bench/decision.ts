/**
 * Decision micro-benchmark: the engine alone (path normalisation, blocks, all
 * buckets of the shipped policy) for many distinct clients, in ns per decision.
 * Prints a table and writes bench/results/decision.json. Time is a ManualClock
 * advanced by 1 ms per decision, so buckets refill as in real traffic.
 *
 *   npx tsx bench/decision.ts [--rounds 5]
 */
import ipaddr from 'ipaddr.js';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_POLICY_FILE, loadPolicyFile } from '../src/config/policy-loader.js';
import { ManualClock } from '../src/core/clock.js';
import { DecisionEngine } from '../src/engine/decision-engine.js';
import { makeClientKey, type ClientKey } from '../src/identity/client-key.js';
import { MemoryBucketStore } from '../src/limiter/stores/memory-bucket-store.js';
import { compilePolicy } from '../src/policy/compiled-policy.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);

interface Scenario {
  name: string;
  clients: number;
  family: 4 | 6;
}

const SCENARIOS: Scenario[] = [
  { name: 'ipv4 10k clients', clients: 10_000, family: 4 },
  { name: 'ipv4 1M clients', clients: 1_000_000, family: 4 },
  { name: 'ipv6 1M clients', clients: 1_000_000, family: 6 },
];

const TARGETS = [
  ['GET', '/'],
  ['GET', '/wp-content/themes/x/style.css?ver=6.4'],
  ['POST', '/wp-admin/admin-ajax.php'],
  ['POST', '/wp-login.php'],
  ['POST', '/xmlrpc.php'],
] as const;

function makeClients(scenario: Scenario): ClientKey[] {
  const clients: ClientKey[] = [];
  for (let i = 0; i < scenario.clients; i++) {
    const addr =
      scenario.family === 4
        ? ipaddr.IPv4.parse(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)
        : ipaddr.IPv6.parse(`2001:db8:${(i >> 16).toString(16)}:${((i >> 8) & 255).toString(16)}::${(i & 255).toString(16)}`);
    clients.push(makeClientKey(addr, { ipv4: 24, ipv6: 64 }));
  }
  return clients;
}

const config = await loadPolicyFile(DEFAULT_POLICY_FILE);
const policy = compilePolicy(config);
const results: { scenario: string; medianNs: number; minNs: number; maxNs: number; decisions: number }[] = [];

for (const scenario of SCENARIOS) {
  const clients = makeClients(scenario);
  const engine = new DecisionEngine(policy, new MemoryBucketStore(config.clients.max_tracked));
  const clock = new ManualClock(0);
  const decisions = Math.max(2_000_000, clients.length * 2);
  const samples: number[] = [];
  // Round 0 warms up (JIT, and fills the store to its steady size); it is not counted.
  for (let round = 0; round <= rounds; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < decisions; i++) {
      const [method, target] = TARGETS[i % TARGETS.length] as (typeof TARGETS)[number];
      engine.decide({ client: clients[(i * 7919) % clients.length] as ClientKey, method, target }, clock.nowMs());
      if ((i & 1023) === 0) clock.advance(1);
    }
    const ns = Number(process.hrtime.bigint() - started) / decisions;
    if (round > 0) samples.push(ns);
  }
  samples.sort((a, b) => a - b);
  results.push({ scenario: scenario.name, medianNs: samples[Math.floor(samples.length / 2)] as number, minNs: samples[0] as number, maxNs: samples.at(-1) as number, decisions });
}

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
console.log(`decision engine, shipped policy, node ${process.version}, ${cpu}, ${rounds} rounds`);
console.log('scenario            median ns   min–max ns');
for (const r of results) console.log(`${r.scenario.padEnd(20)}${r.medianNs.toFixed(0).padStart(9)}   ${r.minNs.toFixed(0)}–${r.maxNs.toFixed(0)}`);
const dir = join(import.meta.dirname, 'results');
await mkdir(dir, { recursive: true });
await writeFile(join(dir, 'decision.json'), `${JSON.stringify({ benchmark: 'decision', node: process.version, cpu, rounds, results }, null, 2)}\n`);
