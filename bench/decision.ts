/**
 * Decision micro-benchmark: the engine alone (path normalisation, blocks, all
 * buckets of the shipped policy) for many distinct clients, in ns per decision,
 * with escalation off and, at a million clients, as shipped (strikes counted,
 * bans earned and checked).
 * Prints a table and writes bench/results/decision.json. Time is a ManualClock
 * advanced by 1 ms every 1,024 decisions, so buckets refill as in real traffic.
 *
 *   npx tsx bench/decision.ts [--rounds 5]
 */
import ipaddr from 'ipaddr.js';
import { parseArgs } from 'node:util';
import { DEFAULT_POLICY_FILE, loadPolicyFile } from '../src/config/policy-loader.js';
import { ManualClock } from '../src/core/clock.js';
import { assembleEngine } from '../src/engine/engine-assembly.js';
import { makeClientKey, type ClientKey } from '../src/identity/client-key.js';
import { environment, median, printTable, writeResult } from './support/bench-report.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);

interface Scenario {
  name: string;
  clients: number;
  family: 4 | 6;
  /** Strikes counted and bans earned, as shipped; off, blocks are decided but nobody is struck. */
  escalation: boolean;
}

// With escalation on, 10k clients would all be banned within the first round
// (each sends 200 requests a round, a fifth of them to the blocked
// /xmlrpc.php) and the benchmark would time ban lookups; a million clients
// send two a round, so their strikes are counted and some earn bans.
const SCENARIOS: Scenario[] = [
  { name: 'ipv4 10k clients', clients: 10_000, family: 4, escalation: false },
  { name: 'ipv4 1M clients', clients: 1_000_000, family: 4, escalation: false },
  { name: 'ipv6 1M clients', clients: 1_000_000, family: 6, escalation: false },
  { name: 'ipv4 1M clients, strikes and bans', clients: 1_000_000, family: 4, escalation: true },
  { name: 'ipv6 1M clients, strikes and bans', clients: 1_000_000, family: 6, escalation: true },
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

const shipped = await loadPolicyFile(DEFAULT_POLICY_FILE);
const withoutEscalation = { ...shipped, escalation: { ...shipped.escalation, enabled: false } };
const results: { scenario: string; medianNs: number; minNs: number; maxNs: number; decisions: number; banned: number | null }[] = [];

for (const scenario of SCENARIOS) {
  const clients = makeClients(scenario);
  // The engine exactly as serve assembles it, one per scenario so stores start empty.
  const assembled = assembleEngine(scenario.escalation ? shipped : withoutEscalation);
  const engine = assembled.engine;
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
  const banned = scenario.escalation ? assembled.ledger.size : null;
  results.push({ scenario: scenario.name, medianNs: median(samples), minNs: Math.min(...samples), maxNs: Math.max(...samples), decisions, banned });
}

const env = environment();
printTable(
  `decision engine, shipped policy, node ${env.node}, ${env.cpu}, ${rounds} rounds`,
  ['scenario', 'median ns', 'min–max ns', 'bans at the end'],
  results.map((r) => [r.scenario, r.medianNs.toFixed(0), `${r.minNs.toFixed(0)}–${r.maxNs.toFixed(0)}`, r.banned === null ? '-' : String(r.banned)]),
);
await writeResult('decision', { rounds, results });
