import type { ClientKey } from '../identity/client-key.js';
import type { BucketSpec } from '../limiter/bucket-spec.js';
import type { BanLedger } from '../escalation/ban-ledger.js';
import type { Escalator } from '../escalation/escalator.js';
import type { BucketStore, BucketTake } from '../limiter/bucket-store.js';
import type { CompiledPolicy } from '../policy/compiled-policy.js';
import { normalizeRequestPath } from '../policy/request-path.js';
import { ALLOW, type AllowDecision, type Decision, type Refusal } from './decision.js';

/** The facts about a request that the engine decides on; nothing about sockets. */
export interface RequestFacts {
  readonly client: ClientKey;
  readonly method: string;
  /** The request-target as sent (`/path?query`), before any normalisation. */
  readonly target: string;
}

/** Bans and strikes; absent when escalation is not wired (unit tests of limits alone). */
export interface EngineEscalation {
  readonly ledger: BanLedger;
  readonly escalator: Escalator;
}

/**
 * Decides what happens to a request: ban (client banned), reject (malformed),
 * block (path), limit (buckets) or allow; each refusal is a strike that may
 * earn a ban. Pure apart from the stores it charges (buckets, strikes, the
 * ban ledger): time comes in as `nowMs`, so the proxy and `portcullis replay`
 * share this exact code.
 */
export class DecisionEngine {
  #policy: CompiledPolicy;
  readonly #store: BucketStore;
  readonly #escalation: EngineEscalation | null;

  constructor(policy: CompiledPolicy, store: BucketStore, escalation: EngineEscalation | null = null) {
    this.#policy = policy;
    this.#store = store;
    this.#escalation = escalation;
  }

  get policy(): CompiledPolicy {
    return this.#policy;
  }

  /** Swaps the policy atomically; bucket levels of unchanged rules carry over (see MemoryBucketStore). */
  setPolicy(policy: CompiledPolicy): void {
    this.#policy = policy;
  }

  /** Decides one request at time `nowMs`: charges its buckets if it is allowed, counts a strike if not. */
  decide(facts: RequestFacts, nowMs: number): Decision {
    const escalation = this.#escalation;
    if (escalation !== null) {
      const ban = escalation.ledger.find(facts.client, nowMs);
      if (ban !== null) return { action: 'ban', status: this.#policy.config.escalation.status, target: ban.target, retryAfterMs: ban.expiresMs - nowMs };
    }
    const decision = this.#evaluate(facts, nowMs);
    if (decision.action !== 'allow' && escalation !== null) {
      escalation.escalator.strike(facts.client, decision.action === 'block' ? decision.strikes : 1, decision.action === 'reject' ? 'malformed' : decision.rule, nowMs);
    }
    return decision;
  }

  #evaluate(facts: RequestFacts, nowMs: number): AllowDecision | Refusal {
    const policy = this.#policy;
    const path = normalizeRequestPath(facts.target);
    if (!path.ok) return { action: 'reject', status: 400, reason: path.reason };

    // Blocks apply to every client, allowlisted or not: they are about the
    // path, and an allowlisted host has no business on /xmlrpc.php either.
    for (const block of policy.blocks.rulesFor(facts.method)) {
      if (block.pattern.matches(path.views)) return { action: 'block', rule: block.name, status: block.status, strikes: block.strikes };
    }
    if (policy.allow.has(facts.client.addr)) return ALLOW;

    let ipBuckets: BucketSpec[] | null = null;
    let prefixBuckets: BucketSpec[] | null = null;
    let statusFor: Map<string, number> | null = null;
    for (const rule of policy.limits.rulesFor(facts.method)) {
      if (rule.paths !== null && !rule.paths.some((pattern) => pattern.matches(path.views))) continue;
      (ipBuckets ??= []).push(...rule.ipBuckets);
      (prefixBuckets ??= []).push(...rule.prefixBuckets);
      (statusFor ??= new Map()).set(rule.name, rule.status);
    }
    if (ipBuckets === null || prefixBuckets === null || statusFor === null) return ALLOW;

    const takes: BucketTake[] = [];
    if (ipBuckets.length > 0) takes.push({ key: facts.client.ip, layout: policy.ipLayout, buckets: ipBuckets });
    if (prefixBuckets.length > 0) takes.push({ key: facts.client.prefix, layout: policy.prefixLayout, buckets: prefixBuckets });
    const outcome = this.#store.take(takes, nowMs);
    if (outcome.admitted) return ALLOW;
    return {
      action: 'limit',
      rule: outcome.bucket.rule,
      status: statusFor.get(outcome.bucket.rule) as number,
      bucket: outcome.bucket,
      retryAfterMs: outcome.retryAfterMs,
    };
  }
}
