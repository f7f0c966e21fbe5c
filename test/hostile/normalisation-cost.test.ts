import { beforeAll, describe, expect, it } from 'vitest';
import { normalizeRequestPath } from '../../src/policy/request-path.js';

/**
 * Path normalisation runs on every request before the rate limits, so its
 * cost must grow linearly with the target: a client that is limited but not
 * yet banned must not be able to buy milliseconds of CPU per request with a
 * long target of the right shape (issue 9, item 8: 12 KB of `a%2f` took
 * ~3 ms, a plain 12 KB target 0.05 ms).
 *
 * Absolute times depend on the machine (they are in bench/path-normalise.ts);
 * this test compares a 48 KB target with a 1.5 KB one of the same shape in
 * the same process: 32 × the bytes costs ~32 × when linear, up to 1024 ×
 * when quadratic (measured before the fix at 8 × the bytes: 17–38 × for the
 * slow shapes, because the linear part still weighs at 1.5 KB; at 32 × that
 * is 190 × and more). The two sizes are timed in turn, after a warm-up of
 * every shape (so the JIT has settled), and compared by their fastest
 * timing: another process or a garbage collection only ever adds time, so
 * the minimum is the cost of the code itself. It must stay under 80 ×.
 * Why so wide a gap: with other test files running beside it on both cores,
 * the linear ratio was seen as high as 60 × (the large targets suffer more
 * from a shared cache), and at 8 × the bytes, with a bound of 12 ×, that
 * noise failed a linear implementation once.
 */

/** Repeated units, each after a leading `/`, that take the slow path and, before the fix, cost quadratic time. */
const SHAPES: readonly string[] = [
  'a%2f', // encoded slashes: the AllowEncodedSlashes views re-normalise a long path
  '/..', // dot segments above the root
  '/./', // `.` segments between empty ones (the MergeSlashes Off view)
  '//', // runs of slashes
  'a//', // short segments between empty ones (the MergeSlashes Off view grows)
  '/a', // many short segments behind a leading `//`
  '%2e%2e/', // encoded dot segments
  'a/../', // a segment and its `..`
  'a%2f..%2f', // an encoded-slash dot segment
  '%41', // escapes of ordinary characters
  'a', // one long segment (the fast path)
];

const SMALL_BYTES = 1536;
const LARGE_FACTOR = 32;
const ROUNDS = 15;
const WARM_UP_ROUNDS = 10;
const CALLS_PER_TIMING = 10;
/** Linear is 32 ×, quadratic 190 × and more: a judgement call with room for noise on a shared machine. */
const MAX_RATIO = 80;

/** `/` then `unit` repeated: whole units only, so both sizes have the same shape (a cut escape would be refused early). */
function targetOf(unit: string, repeats: number): string {
  return `/${unit.repeat(repeats)}`;
}

function timeCalls(target: string): number {
  const started = process.hrtime.bigint();
  for (let i = 0; i < CALLS_PER_TIMING; i++) {
    if (!normalizeRequestPath(target).ok) throw new Error(`target refused: ${target.slice(0, 40)}…`);
  }
  return Number(process.hrtime.bigint() - started);
}

function sizesOf(unit: string): { small: string; large: string } {
  const repeats = Math.round(SMALL_BYTES / unit.length);
  return { small: targetOf(unit, repeats), large: targetOf(unit, repeats * LARGE_FACTOR) };
}

describe('path normalisation cost grows linearly with the target', () => {
  beforeAll(() => {
    // The first calls run in the interpreter, and a new shape can deoptimise
    // code the previous one optimised: warm every shape up before timing any.
    for (let round = 0; round < WARM_UP_ROUNDS; round++) {
      for (const unit of SHAPES) {
        const { small, large } = sizesOf(unit);
        timeCalls(small);
        timeCalls(large);
      }
    }
  });

  it.each(SHAPES)('%j: 48 KB costs less than 80 × 1.5 KB', (unit) => {
    const { small, large } = sizesOf(unit);
    let smallNs = Infinity;
    let largeNs = Infinity;
    for (let round = 0; round < ROUNDS; round++) {
      smallNs = Math.min(smallNs, timeCalls(small));
      largeNs = Math.min(largeNs, timeCalls(large));
    }
    const ratio = largeNs / smallNs;
    const detail = `fastest of ${ROUNDS} timings of ${CALLS_PER_TIMING} calls: ${(largeNs / CALLS_PER_TIMING / 1000).toFixed(1)} µs per 48 KB target, ${(smallNs / CALLS_PER_TIMING / 1000).toFixed(1)} µs per 1.5 KB one`;
    expect(ratio, `cost ratio 48 KB / 1.5 KB for ${JSON.stringify(unit)} (${detail})`).toBeLessThan(MAX_RATIO);
  });
});
