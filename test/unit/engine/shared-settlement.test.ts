import { describe, expect, it } from 'vitest';
import { parsePolicy } from '../../../src/config/policy-loader.js';
import type { AllowDecision } from '../../../src/engine/decision.js';
import { assembleEngine } from '../../../src/engine/engine-assembly.js';
import { makeClientKey, parseClientAddress } from '../../../src/identity/client-key.js';

const POLICY = `limits:
  - name: pages
    methods: [GET]
    per_ip: { rate: 1/min, burst: 3 }
    per_prefix: { rate: 1/min, burst: 10 }
    status: 429
escalation: { strikes: 2, window: 60s, ban: 10m }
`;

const client = makeClientKey(parseClientAddress('192.0.2.7')!, { ipv4: 24, ipv6: 64 });
const facts = { client, method: 'GET', target: '/' };

/** The shared store's answer when it refused the ip bucket. */
function refusedBy(decision: AllowDecision) {
  return { admitted: false as const, bucket: decision.shared!.take.takes[0]!.buckets[0]!, retryAfterMs: 1_000 };
}

describe('cluster mode: the synchronous decision and the shared settlement', () => {
  it('an admitted request carries a copy of its takes, keyed by address and prefix, tagged with the prefix', () => {
    const { engine } = assembleEngine(parsePolicy(POLICY, 'p.yaml'), { sharedLimits: true });
    const first = engine.decide(facts, 0) as AllowDecision;
    const second = engine.decide({ ...facts, client: makeClientKey(parseClientAddress('192.0.2.8')!, { ipv4: 24, ipv6: 64 }) }, 0) as AllowDecision;
    expect(first.shared?.take.hashTag).toBe('192.0.2.0/24');
    expect(first.shared?.take.takes.map((take) => take.key)).toEqual(['192.0.2.7', '192.0.2.0/24']);
    // The plan reuses its take array: the copy of the first request must not follow the second.
    expect(second.shared?.take.takes.map((take) => take.key)).toEqual(['192.0.2.8', '192.0.2.0/24']);
    expect(first.shared?.take.takes[0]?.key).toBe('192.0.2.7');
  });

  it('without cluster mode nothing is carried', () => {
    const { engine } = assembleEngine(parsePolicy(POLICY, 'p.yaml'));
    expect((engine.decide(facts, 0) as AllowDecision).shared).toBeUndefined();
  });

  it('a shared refusal refunds the local take, is a limit with the rule\'s status, and a strike', () => {
    const { engine, store, ledger } = assembleEngine(parsePolicy(POLICY, 'p.yaml'), { sharedLimits: true });
    const admitted = engine.decide(facts, 0) as AllowDecision;
    expect(store.peek('', 'ip', client, 0)?.get('pages/ip/1/min/3')).toBe(2);
    const settled = engine.settleShared(facts, admitted, refusedBy(admitted), 0);
    expect(settled).toMatchObject({ action: 'limit', rule: 'pages', status: 429, retryAfterMs: 1_000 });
    expect(store.peek('', 'ip', client, 0)?.get('pages/ip/1/min/3')).toBe(3);
    expect(store.peek('', 'prefix', client, 0)?.get('pages/prefix/1/min/10')).toBe(10);
    // The second strike bans (strikes: 2).
    const again = engine.decide(facts, 1) as AllowDecision;
    engine.settleShared(facts, again, refusedBy(again), 1);
    expect(ledger.get('192.0.2.7', 2)?.target).toBe('192.0.2.7');
  });

  it('an admission or an unavailable store leaves the decision and the local take as they were', () => {
    const { engine, store } = assembleEngine(parsePolicy(POLICY, 'p.yaml'), { sharedLimits: true });
    const admitted = engine.decide(facts, 0) as AllowDecision;
    expect(engine.settleShared(facts, admitted, { admitted: true }, 0)).toBe(admitted);
    expect(engine.settleShared(facts, admitted, { admitted: null }, 0)).toBe(admitted);
    expect(store.peek('', 'ip', client, 0)?.get('pages/ip/1/min/3')).toBe(2);
  });
});
