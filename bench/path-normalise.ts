/**
 * Path normalisation micro-benchmark: normalizeRequestPath called directly
 * (no cache) on targets of several shapes and lengths, in µs per call. It
 * runs on every request before the rate limits, so what a long target of
 * the worst shape costs is what a limited-but-not-banned client can make
 * the proxy spend. Cost must grow linearly with the length: the `× per KB`
 * column compares the 12 KB cost per KB with the 1 KB one (1.0 is linear).
 * Prints a table and writes bench/results/path-normalise.json.
 *
 *   npx tsx bench/path-normalise.ts [--rounds 7]
 */
import { parseArgs } from 'node:util';
import { normalizeRequestPath } from '../src/policy/request-path.js';
import { environment, median, printTable, writeResult } from './support/bench-report.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const rounds = Number(values.rounds);
if (!Number.isSafeInteger(rounds) || rounds < 1) throw new RangeError(`--rounds must be a positive whole number, got ${values.rounds}`);

/** Target lengths in bytes; 12 KB is about the most Node's 16 KB header limit lets through. */
const LENGTHS = [64, 1024, 4096, 12_288] as const;
/** Each timing runs for about this long, so the clock's resolution and one garbage collection do not matter. */
const ROUND_NS = 20_000_000;

interface Shape {
  name: string;
  /** Repeated after a leading `/` up to the length. */
  unit: string;
}

const SHAPES: readonly Shape[] = [
  { name: 'plain segment (fast path)', unit: 'a' },
  { name: 'plain path /wp-content/…', unit: 'wp-content/' },
  { name: 'escapes %41', unit: '%41' },
  { name: 'encoded slashes a%2f', unit: 'a%2f' },
  { name: 'short segments behind // (/a)', unit: '/a' },
  { name: 'empty segments a//', unit: 'a//' },
  { name: 'dot segments /./', unit: '/./' },
  { name: 'above the root /..', unit: '/..' },
  { name: 'encoded dot segments %2e%2e/', unit: '%2e%2e/' },
  { name: 'segment and its .. a/../', unit: 'a/../' },
  { name: 'encoded-slash dots a%2f..%2f', unit: 'a%2f..%2f' },
];

/** A short target every WordPress page load asks for, for scale. */
const SHORT_TARGET = '/wp-content/themes/x/style.css?ver=6.4';

/** `/` then whole units up to about `bytes` (a cut escape would be refused early and measure nothing). */
function targetOf(unit: string, bytes: number): string {
  return `/${unit.repeat(Math.max(1, Math.round((bytes - 1) / unit.length)))}`;
}

/** Median and spread of µs per call over `rounds` timings, after one untimed warm-up timing. */
function measure(target: string): { medianUs: number; minUs: number; maxUs: number; bytes: number } {
  if (!normalizeRequestPath(target).ok) throw new Error(`target refused: ${target.slice(0, 40)}…`);
  // Calls per timing from a first estimate, so every length runs for about ROUND_NS.
  let calls = 1;
  for (;;) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) normalizeRequestPath(target);
    const ns = Number(process.hrtime.bigint() - started);
    if (ns >= ROUND_NS / 10 || calls >= 1 << 24) {
      calls = Math.max(1, Math.ceil((calls * ROUND_NS) / Math.max(ns, 1)));
      break;
    }
    calls *= 2;
  }
  const samples: number[] = [];
  for (let round = 0; round <= rounds; round++) {
    const started = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) normalizeRequestPath(target);
    const us = Number(process.hrtime.bigint() - started) / calls / 1000;
    if (round > 0) samples.push(us); // round 0 warms up
  }
  return { medianUs: median(samples), minUs: Math.min(...samples), maxUs: Math.max(...samples), bytes: target.length };
}

const short = measure(SHORT_TARGET);
const results = SHAPES.map((shape) => ({ shape: shape.name, unit: shape.unit, byLength: LENGTHS.map((bytes) => measure(targetOf(shape.unit, bytes))) }));
const plainLongest = results[0]!.byLength.at(-1)!;

const env = environment();
const format = (us: number): string => (us < 10 ? us.toFixed(2) : us.toFixed(1));
printTable(
  `normalizeRequestPath, µs per call (median of ${rounds} rounds): node ${env.node}, ${env.cpu}; short target ${JSON.stringify(SHORT_TARGET)}: ${format(short.medianUs)} µs`,
  ['shape', ...LENGTHS.map((bytes) => (bytes < 1024 ? `${bytes} B` : `${bytes / 1024} KB`)), '12 KB min–max', '× per KB (12 KB vs 1 KB)', '12 KB × plain'],
  results.map((row) => {
    const oneKb = row.byLength[1]!;
    const longest = row.byLength.at(-1)!;
    return [
      row.shape,
      ...row.byLength.map((m) => format(m.medianUs)),
      `${format(longest.minUs)}–${format(longest.maxUs)}`,
      (longest.medianUs / longest.bytes / (oneKb.medianUs / oneKb.bytes)).toFixed(2),
      (longest.medianUs / plainLongest.medianUs).toFixed(1),
    ];
  }),
);
console.log(`\ntarget: linear cost (× per KB ≈ 1); a 12 KB target of any shape well under 1 ms`);
console.log(`wrote ${await writeResult('path-normalise', { rounds, shortTarget: { target: SHORT_TARGET, ...short }, results })}`);
