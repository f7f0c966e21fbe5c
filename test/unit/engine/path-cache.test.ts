import ipaddr from 'ipaddr.js';
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import { DecisionEngine } from '../../../src/engine/decision-engine.js';
import { PathCache } from '../../../src/engine/path-cache.js';
import { makeClientKey } from '../../../src/identity/client-key.js';
import { MemoryBucketStore } from '../../../src/limiter/stores/memory-bucket-store.js';
import { compilePolicy } from '../../../src/policy/compiled-policy.js';
import { normalizeRequestPath } from '../../../src/policy/request-path.js';

const POLICY = 'block:\n  - path: /xmlrpc.php\nlimits: []\nescalation: { enabled: false }\n';

/** A full garbage collection; `--expose-gc` set now only reaches contexts created afterwards. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
}

function heapUsedBytes(): number {
  collectGarbage();
  return v8.getHeapStatistics().used_heap_size;
}

describe('DecisionEngine: the cache of normalised paths is bounded in bytes (issue 9, item 8)', () => {
  it('4,096 distinct 10 KB targets leave the engine holding well under 8 MB (before: ~80 MB, each target and its view)', () => {
    const engine = new DecisionEngine(compilePolicy(parsePolicy(POLICY, 'test.yaml')), new MemoryBucketStore(100));
    const client = makeClientKey(ipaddr.process('198.51.100.7'), { ipv4: 24, ipv6: 64 });
    const filler = 'a'.repeat(10_000);
    const before = heapUsedBytes();
    for (let i = 0; i < 4_096; i++) {
      // Built fresh each time, as the HTTP parser does: no string is shared with the test.
      const decision = engine.decide({ client, method: 'GET', target: `/p/${i}/${filler}%41` }, 0);
      expect(decision.action).toBe('allow');
    }
    const retainedBytes = heapUsedBytes() - before;
    expect(engine.decide({ client, method: 'GET', target: '/xmlrpc.php' }, 0).action).toBe('block'); // keeps `engine` alive until here
    expect(retainedBytes).toBeLessThan(8 * 1024 * 1024);
  });
});

describe('PathCache', () => {
  it('answers what normalizeRequestPath answers, and the same result object for a repeated target', () => {
    const cache = new PathCache();
    for (const target of ['/xmlrpc.php', '/a/../%78mlrpc.php?x', 'http://h/a%2F..', '/%zz', '*']) {
      const first = cache.normalize(target);
      expect(first).toEqual(normalizeRequestPath(target));
      expect(cache.normalize(target)).toBe(first);
    }
    expect(cache.size).toBe(5);
  });

  it('never caches a target longer than 512 characters, but still normalises it', () => {
    const cache = new PathCache();
    const target = `/a/..${'/b'.repeat(256)}`;
    expect(target.length).toBeGreaterThan(512);
    expect(cache.normalize(target)).toEqual(normalizeRequestPath(target));
    expect(cache.size).toBe(0);
    expect(cache.normalize('/a'.repeat(256))).toEqual({ ok: true, views: ['/a'.repeat(256)] }); // 512: cached
    expect(cache.size).toBe(1);
  });

  it('holds at most 4,096 targets, the recent half at least', () => {
    const cache = new PathCache();
    for (let i = 0; i < 10_000; i++) cache.normalize(`/p/${i}`);
    expect(cache.size).toBeLessThanOrEqual(4_096);
    expect(cache.size).toBeGreaterThanOrEqual(2_048);
    // The most recent ones are the ones kept.
    const recent = cache.normalize('/p/9999');
    expect(cache.normalize('/p/9999')).toBe(recent);
  });

  it('holds at most about 1 MB of characters, targets and views together', () => {
    const cache = new PathCache();
    const filler = 'a'.repeat(480);
    // ~1,000 characters an entry (the target and its decoded view): 4,096 of them would be ~4 MB.
    for (let i = 0; i < 4_096; i++) cache.normalize(`/${i}/${filler}%41`);
    expect(cache.chars).toBeLessThanOrEqual(1_048_576);
    // Two generations of at most half the budget each: at least the young one's worth is held.
    expect(cache.chars).toBeGreaterThan(1_048_576 / 2 - 1_100);
    expect(cache.size).toBeLessThan(1_100);
  });
});
