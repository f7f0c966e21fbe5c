/**
 * Ban restore benchmark: how long `replaceAll` takes to load 100,000 bans
 * into the kernel (what portcullis does at every start), for the nftables and
 * ipset backends, in a network namespace this script creates and deletes.
 * Prints a table and writes bench/results/ban-restore.json. Needs root; skips
 * with the reason otherwise.
 *
 * The bans: 90,000 IPv4 addresses, 6,000 IPv6 addresses, 3,000 IPv4 /24s and
 * 1,000 IPv6 /64s. Round 1 loads into empty sets; later rounds replace a full
 * load with another (every element flushed and written again). Each round's
 * time covers validation, batch text, the tool and the kernel.
 *
 *   npx tsx bench/ban-restore.ts [--rounds 3] [--bans 100000]
 */
import ipaddr from 'ipaddr.js';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { BanBackend, KernelBan } from '../src/firewall/ban-backend.js';
import { CommandRunner, runCommand } from '../src/firewall/command-runner.js';
import { IpsetBackend } from '../src/firewall/ipset-backend.js';
import { NftablesBackend } from '../src/firewall/nftables-backend.js';
import { environment, printTable, writeResult } from './support/bench-report.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, bans: { type: 'string', default: '100000' } } });
const rounds = Number(values.rounds);
const total = Number(values.bans);
/** The target the README promises for a start with 100,000 bans. */
const TARGET_MS = 2_000;

if (typeof process.getuid === 'function' && process.getuid() !== 0) {
  console.log('skipped: the ban restore benchmark needs root (it creates a network namespace and loads nftables/ipset there)');
  process.exit(0);
}

/** The bans of round `round`: distinct per round, so each replaceAll really replaces everything. */
function makeBans(round: number): KernelBan[] {
  const bans: KernelBan[] = [];
  const v6 = Math.round(total * 0.06);
  const prefixes4 = Math.round(total * 0.03);
  const prefixes6 = Math.round(total * 0.01);
  const v4 = total - v6 - prefixes4 - prefixes6;
  const timeoutSec = 600 + round;
  for (let i = 0; i < v4; i++) bans.push({ target: `10.${round * 16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}`, family: 4, scope: 'ip', timeoutSec });
  // Targets must be canonical (RFC 5952): ipaddr.js writes them so.
  const v6Text = (text: string): string => ipaddr.IPv6.parse(text).toRFC5952String();
  for (let i = 0; i < v6; i++) bans.push({ target: v6Text(`2001:db8:${round.toString(16)}::${(i + 1).toString(16)}`), family: 6, scope: 'ip', timeoutSec });
  for (let i = 0; i < prefixes4; i++) bans.push({ target: `172.${16 + round * 4 + (i >> 8)}.${i & 255}.0/24`, family: 4, scope: 'prefix', timeoutSec });
  for (let i = 0; i < prefixes6; i++) bans.push({ target: `${v6Text(`2001:db8:${(0x100 + round).toString(16)}:${i.toString(16)}::`)}/64`, family: 6, scope: 'prefix', timeoutSec });
  return bans;
}

async function toolVersion(file: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await runCommand(file, args);
    return stdout.trim().split('\n')[0] ?? '';
  } catch (error) {
    return `unavailable (${(error as Error).message})`;
  }
}

const ns = `pc-bench-${randomBytes(3).toString('hex')}`;
await runCommand('ip', ['netns', 'add', ns]);
const cleanup = (): void => {
  // Synchronous best effort on Ctrl-C; the normal path awaits the same command below.
  void runCommand('ip', ['netns', 'delete', ns]).catch(() => {});
};
process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});

const results: { backend: string; bans: number; medianMs: number; minMs: number; maxMs: number; roundsMs: number[]; listMs: number }[] = [];
try {
  const runner = new CommandRunner({ netns: ns });
  const backends: BanBackend[] = [new NftablesBackend({ ports: [80, 443], maxBans: 1_000_000 }, runner), new IpsetBackend({ ports: [80, 443], maxBans: 1_000_000 }, runner)];
  for (const backend of backends) {
    await backend.init();
    const samples: number[] = [];
    for (let round = 1; round <= rounds; round++) {
      const bans = makeBans(round);
      const started = performance.now();
      await backend.replaceAll(bans);
      samples.push(performance.now() - started);
    }
    const listStarted = performance.now();
    const held = await backend.list();
    const listMs = performance.now() - listStarted;
    if (held.length !== total) throw new Error(`${backend.name}: list() shows ${held.length} bans after replaceAll of ${total}`);
    const sorted = [...samples].sort((a, b) => a - b);
    results.push({
      backend: backend.name,
      bans: total,
      medianMs: sorted[Math.floor(sorted.length / 2)] as number,
      minMs: sorted[0] as number,
      maxMs: sorted.at(-1) as number,
      roundsMs: samples,
      listMs,
    });
    await backend.replaceAll([]);
  }
} finally {
  await runCommand('ip', ['netns', 'delete', ns]);
}

const tools = { kernel: os.release(), nft: await toolVersion('nft', ['--version']), ipset: await toolVersion('ipset', ['--version']) };
const env = environment();
const ms = (value: number): string => `${value.toFixed(0)} ms`;
printTable(
  `replaceAll of ${total.toLocaleString('en')} bans (90% IPv4, 6% IPv6, 3% IPv4 /24, 1% IPv6 /64), ${rounds} rounds`,
  ['backend', 'median', 'min–max', 'list()', `target ≤ ${ms(TARGET_MS)}`],
  results.map((result) => [result.backend, ms(result.medianMs), `${ms(result.minMs)}–${ms(result.maxMs)}`, ms(result.listMs), result.medianMs <= TARGET_MS ? 'ok' : 'SLOWER']),
);
console.log(`node ${env.node}, ${env.cpu} (${env.cores} cores), Linux ${tools.kernel}, ${tools.nft}, ${tools.ipset}`);
await writeResult('ban-restore', { ...tools, rounds, targetMs: TARGET_MS, results });
