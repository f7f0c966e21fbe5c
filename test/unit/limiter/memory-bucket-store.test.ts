import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../src/core/clock.js';
import { createBucketLayout, type BucketSpec } from '../../../src/limiter/bucket-spec.js';
import type { BucketTake } from '../../../src/limiter/bucket-store.js';
import { makeClientKey, parseClientAddress, type ClientKey } from '../../../src/identity/client-key.js';
import { MemoryBucketStore } from '../../../src/limiter/stores/memory-bucket-store.js';

function bucket(rule: string, ratePerSec: number, burst: number, slot: number, cost = 1): BucketSpec {
  return { id: `${rule}/ip/${ratePerSec}/${burst}`, rule, scope: 'ip', ratePerMs: ratePerSec / 1000, rateText: `${ratePerSec}/s`, burst, cost, slot };
}

/** The ClientKey of an address, with /24 and /64 prefixes as shipped. */
function client(address: string): ClientKey {
  return makeClientKey(parseClientAddress(address)!, { ipv4: 24, ipv6: 64 });
}

/** Heap in use after a full collection; `--expose-gc` set now only reaches contexts created afterwards. */
function heapUsedAfterGc(): number {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  gc();
  gc();
  return v8.getHeapStatistics().used_heap_size;
}

describe('MemoryBucketStore', () => {
  const read = bucket('read', 10, 3, 0);
  const write = bucket('write', 1, 2, 1);
  const layout = createBucketLayout('ip', [read, write]);
  const takeRead = (address: string): BucketTake[] => [{ owner: '', client: client(address), layout, buckets: [read] }];
  const levelsOf = (store: MemoryBucketStore, address: string, nowMs = 0) => store.peek('', 'ip', client(address), nowMs);

  it('admits a burst, then refuses with an honest retry time, then refills', () => {
    const store = new MemoryBucketStore(100);
    const clock = new ManualClock(1_000);
    for (let i = 0; i < 3; i++) expect(store.take(takeRead('192.0.2.1'), clock.nowMs()).admitted).toBe(true);
    const refusal = store.take(takeRead('192.0.2.1'), clock.nowMs());
    expect(refusal).toMatchObject({ admitted: false, bucket: read });
    expect(refusal.admitted === false && refusal.retryAfterMs).toBeCloseTo(100, 9);
    clock.advance(99);
    expect(store.take(takeRead('192.0.2.1'), clock.nowMs()).admitted).toBe(false);
    clock.advance(1);
    expect(store.take(takeRead('192.0.2.1'), clock.nowMs()).admitted).toBe(true);
  });

  it('keeps clients and buckets apart', () => {
    const store = new MemoryBucketStore(100);
    for (let i = 0; i < 3; i++) store.take(takeRead('192.0.2.1'), 0);
    expect(store.take(takeRead('192.0.2.1'), 0).admitted).toBe(false);
    expect(store.take(takeRead('192.0.2.2'), 0).admitted).toBe(true);
    expect(store.take([{ owner: '', client: client('192.0.2.1'), layout, buckets: [write] }], 0).admitted).toBe(true);
  });

  it('charges all buckets or none', () => {
    const store = new MemoryBucketStore(100);
    const prefixBucket: BucketSpec = { ...bucket('read', 10, 1, 0), id: 'read/prefix', scope: 'prefix' };
    const prefixLayout = createBucketLayout('prefix', [prefixBucket]);
    const both = (ip: string): BucketTake[] => [
      { owner: '', client: client(ip), layout, buckets: [read] },
      { owner: '', client: client(ip), layout: prefixLayout, buckets: [prefixBucket] },
    ];
    expect(store.take(both('10.0.0.1'), 0).admitted).toBe(true);
    // The prefix is empty now: the next request is refused and its IP bucket must not be charged.
    for (let i = 0; i < 5; i++) expect(store.take(both('10.0.0.1'), 0)).toMatchObject({ admitted: false, bucket: prefixBucket });
    expect(levelsOf(store, '10.0.0.1')?.get(read.id)).toBe(2);
  });

  it('reports the longest wait among refusing buckets', () => {
    const store = new MemoryBucketStore(100);
    const slowCostly = bucket('slow', 1, 2, 1, 2);
    const takes: BucketTake[] = [{ owner: '', client: client('192.0.2.1'), layout: createBucketLayout('ip', [read, slowCostly]), buckets: [read, slowCostly] }];
    expect(store.take(takes, 0).admitted).toBe(true);
    const refusal = store.take(takes, 0);
    expect(refusal).toMatchObject({ admitted: false, bucket: slowCostly });
    expect(refusal.admitted === false && refusal.retryAfterMs).toBeCloseTo(2000, 6);
  });

  it('never tracks more keys than its cap, forgetting the least recently seen', () => {
    const store = new MemoryBucketStore(1000);
    for (let i = 0; i < 5000; i++) store.take(takeRead(`10.0.${i >> 8}.${i & 255}`), 0);
    expect(store.size).toBe(1000);
    expect(levelsOf(store, '10.0.0.0')).toBeNull();
    expect(levelsOf(store, '10.0.19.135')).not.toBeNull();
    expect(store.sizeByScope()).toEqual({ ip: 1000, prefix: 0 });
  });

  it('counts tracked keys per scope as they come and are evicted', () => {
    const prefixLayout = createBucketLayout('prefix', [{ ...read, id: 'read/prefix', scope: 'prefix' }]);
    const store = new MemoryBucketStore(3);
    store.take([...takeRead('10.0.0.1'), { owner: '', client: client('10.0.0.1'), layout: prefixLayout, buckets: prefixLayout.buckets }], 0);
    expect(store.sizeByScope()).toEqual({ ip: 1, prefix: 1 });
    store.take(takeRead('10.0.0.2'), 0);
    store.take(takeRead('10.0.0.3'), 0);
    expect(store.sizeByScope()).toEqual({ ip: 2, prefix: 1 });
    store.take(takeRead('10.0.0.4'), 0);
    expect(store.sizeByScope()).toEqual({ ip: 3, prefix: 0 });
  });

  it('evicts the least recently seen key, where a take counts as seeing it and a peek does not', () => {
    const store = new MemoryBucketStore(2);
    for (let i = 0; i < 3; i++) store.take(takeRead('192.0.2.1'), 0);
    store.take(takeRead('192.0.2.2'), 0);
    store.take(takeRead('192.0.2.1'), 0); // a is the most recent
    levelsOf(store, '192.0.2.2'); // and stays so
    store.take(takeRead('192.0.2.3'), 0); // evicts b
    expect(store.size).toBe(2);
    expect(levelsOf(store, '192.0.2.2')).toBeNull();
    expect(levelsOf(store, '192.0.2.1')?.get(read.id)).toBe(0);
    expect(store.sizeByScope()).toEqual({ ip: 2, prefix: 0 });
    // b comes back with full buckets, in the row a forgotten key gave up.
    store.take(takeRead('192.0.2.2'), 0); // evicts a
    expect(levelsOf(store, '192.0.2.1')).toBeNull();
    expect(levelsOf(store, '192.0.2.2')?.get(read.id)).toBe(2);
    expect(levelsOf(store, '192.0.2.3')?.get(read.id)).toBe(2);
  });

  it('with a cap of one key, forgets each key for the next', () => {
    const store = new MemoryBucketStore(1);
    for (let i = 0; i < 3; i++) store.take(takeRead('192.0.2.1'), 0);
    expect(store.take(takeRead('192.0.2.1'), 0).admitted).toBe(false);
    store.take(takeRead('192.0.2.2'), 0);
    expect(store.size).toBe(1);
    expect(levelsOf(store, '192.0.2.1')).toBeNull();
    expect(store.take(takeRead('192.0.2.1'), 0).admitted).toBe(true);
    expect(levelsOf(store, '192.0.2.2')).toBeNull();
  });

  it('smaller than one request\'s keys, judges a key forgotten within the call on full buckets and charges it nowhere', () => {
    const prefixRead: BucketSpec = { ...bucket('read', 10, 5, 0), id: 'read/prefix', scope: 'prefix' };
    const prefixLayout = createBucketLayout('prefix', [prefixRead]);
    const both = (ip: string): BucketTake[] => [...takeRead(ip), { owner: '', client: client(ip), layout: prefixLayout, buckets: [prefixRead] }];
    const store = new MemoryBucketStore(1);
    for (let i = 0; i < 4; i++) expect(store.take(both('10.0.0.1'), 0).admitted).toBe(true);
    // Each call the address evicts the prefix and then the prefix the
    // address: both start full every time, and only the prefix is left,
    // charged once (a row shared by both would have mixed their levels).
    expect(store.size).toBe(1);
    expect(levelsOf(store, '10.0.0.1')).toBeNull();
    expect(store.peek('', 'prefix', client('10.0.0.1'), 0)?.get(prefixRead.id)).toBe(4);
    expect(store.sizeByScope()).toEqual({ ip: 0, prefix: 1 });
  });

  it('costs memory for the keys it holds, not for its cap', () => {
    // A table sized for a million keys at start put 16 MB of arrays on the
    // heap before the first client, and V8 sized its garbage headroom by them.
    const before = process.memoryUsage().heapUsed;
    const store = new MemoryBucketStore(1_000_000);
    const grew = process.memoryUsage().heapUsed - before;
    expect(grew).toBeLessThan(2 * 1024 * 1024);
    for (let i = 0; i < 3000; i++) store.take(takeRead(`10.1.${i >> 8}.${i & 255}`), 0);
    expect(store.size).toBe(3000);
  });

  it('keeps nothing on the heap per key: 100,000 clients it holds after their ClientKeys are gone add under 1 MB', () => {
    // Keyed by strings in a Map, each key cost about 110 bytes of heap
    // (the string and the entry): 107 MB at a million clients, each marked
    // by every major collection and doubled in RSS by V8's headroom.
    const store = new MemoryBucketStore(200_000);
    store.take(takeRead('10.9.0.1'), 0); // the first arrays, and whatever the first call compiles
    const before = heapUsedAfterGc();
    for (let i = 0; i < 100_000; i++) store.take(takeRead(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`), 0);
    const grew = heapUsedAfterGc() - before;
    expect(store.size).toBe(100_001);
    expect(grew).toBeLessThan(1024 * 1024);
  });

  it('keeps owners, scopes, prefix lengths and families apart, though their binary words agree', () => {
    const store = new MemoryBucketStore(100);
    const prefixLayout = createBucketLayout('prefix', [{ ...read, id: 'read/prefix', scope: 'prefix' }]);
    const drain = (take: BucketTake): void => {
      for (let i = 0; i < 3; i++) expect(store.take([take], 0).admitted).toBe(true);
      expect(store.take([take], 0).admitted).toBe(false);
    };
    const at32 = makeClientKey(parseClientAddress('10.0.0.0')!, { ipv4: 32, ipv6: 64 });
    drain({ owner: '', client: at32, layout, buckets: [read] });
    // The same address as a /32 prefix, the same words as a /24 and as a /23, another site's bucket, and the IPv6 address whose first word is 10.0.0.0.
    const others: BucketTake[] = [
      { owner: '', client: at32, layout: prefixLayout, buckets: prefixLayout.buckets },
      { owner: '', client: client('10.0.0.0'), layout: prefixLayout, buckets: prefixLayout.buckets },
      { owner: '', client: makeClientKey(parseClientAddress('10.0.0.0')!, { ipv4: 23, ipv6: 64 }), layout: prefixLayout, buckets: prefixLayout.buckets },
      { owner: 'shop\u0000', client: at32, layout, buckets: [read] },
      { owner: '', client: client('a00::'), layout, buckets: [read] },
    ];
    for (const take of others) drain(take);
    expect(store.size).toBe(6);
    expect(store.peek('shop\u0000', 'ip', at32, 0)?.get(read.id)).toBe(0);
    expect(store.peek('blog\u0000', 'ip', at32, 0)).toBeNull();
  });

  it('keeps levels of unchanged buckets across a new layout and starts new ones full', () => {
    const store = new MemoryBucketStore(100);
    for (let i = 0; i < 3; i++) store.take(takeRead('192.0.2.1'), 0);
    const added = bucket('added', 1, 7, 0);
    const movedRead = { ...read, slot: 1 };
    const newLayout = createBucketLayout('ip', [added, movedRead]);
    expect(store.take([{ owner: '', client: client('192.0.2.1'), layout: newLayout, buckets: [movedRead] }], 0).admitted).toBe(false);
    expect(levelsOf(store, '192.0.2.1')?.get(added.id)).toBe(7);
  });

  it('gives a key that comes back after eviction full buckets, though it reuses the row of a forgotten key', () => {
    const store = new MemoryBucketStore(2);
    for (let i = 0; i < 3; i++) store.take(takeRead('192.0.2.1'), 0);
    expect(store.take(takeRead('192.0.2.1'), 0).admitted).toBe(false);
    store.take(takeRead('192.0.2.2'), 0);
    store.take(takeRead('192.0.2.3'), 0); // evicts a
    expect(levelsOf(store, '192.0.2.1')).toBeNull();
    for (let i = 0; i < 3; i++) expect(store.take(takeRead('192.0.2.1'), 0).admitted).toBe(true);
    expect(store.take(takeRead('192.0.2.1'), 0).admitted).toBe(false);
    expect(levelsOf(store, '192.0.2.3')?.get(read.id)).toBe(2);
  });

  it('widens its rows for a reloaded layout with more buckets, keeping every level', () => {
    const store = new MemoryBucketStore(5000);
    for (let k = 0; k < 3000; k++) store.take(takeRead(`10.2.${k >> 8}.${k & 255}`), 0);
    const wide = createBucketLayout('ip', [read, write, bucket('192.0.2.3', 1, 4, 2), bucket('d', 1, 5, 3), bucket('e', 1, 6, 4)]);
    expect(store.take([{ owner: '', client: client('10.2.11.183'), layout: wide, buckets: [wide.buckets[4]!] }], 0).admitted).toBe(true);
    expect(levelsOf(store, '10.2.11.183')?.get('e/ip/1/6')).toBe(5);
    expect(levelsOf(store, '10.2.11.183')?.get(read.id)).toBe(2);
    expect(levelsOf(store, '10.2.0.0')?.get(read.id)).toBe(2);
  });
});

