import type { ClientKey } from '../identity/client-key.js';
import type { BucketSpec } from '../limiter/bucket-spec.js';
import type { BanLedger } from '../escalation/ban-ledger.js';
import type { Escalator } from '../escalation/escalator.js';
import type { BucketStore, BucketTake } from '../limiter/bucket-store.js';
import type { CompiledLimitRule, CompiledPolicy } from '../policy/compiled-policy.js';
import { normalizeRequestPath } from '../policy/request-path.js';
import { explainClient, type ClientExplanation } from './client-explanation.js';
import { ALLOW, type AllowDecision, type Decision, type Refusal, type ShadowRefusal } from './decision.js';

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

  /** Why `client` is where it is: bucket levels, strikes, bans (for `portcullis explain`). Charges nothing. */
  explain(client: ClientKey, nowMs: number): ClientExplanation {
    return explainClient({ policy: this.#policy, store: this.#store, escalation: this.#escalation }, client, nowMs);
  }

  #evaluate(facts: RequestFacts, nowMs: number): AllowDecision | Refusal {
    const policy = this.#policy;
    const path = normalizeRequestPath(facts.target);
    if (!path.ok) return { action: 'reject', status: 400, reason: path.reason };

    // Blocks apply to every client, allowlisted or not: they are about the
    // path, and an allowlisted host has no business on /xmlrpc.php either.
    let shadow: ShadowRefusal | null = null;
    for (const block of policy.blocks.rulesFor(facts.method)) {
      if (!block.pattern.matches(path.views)) continue;
      if (!block.shadow) return { action: 'block', rule: block.name, status: block.status, strikes: block.strikes };
      shadow ??= { kind: 'block', rule: block.name };
    }
    if (policy.allow.has(facts.client.addr)) return allowWith(shadow);

    let enforced: MatchedBuckets | null = null;
    let shadowed: MatchedBuckets | null = null;
    for (const rule of policy.limits.rulesFor(facts.method)) {
      if (rule.paths !== null && !rule.paths.some((pattern) => pattern.matches(path.views))) continue;
      const into = rule.shadow ? (shadowed ??= new MatchedBuckets()) : (enforced ??= new MatchedBuckets());
      into.add(rule);
    }
    if (enforced !== null) {
      const outcome = this.#store.take(enforced.takes(facts.client, policy), nowMs);
      if (!outcome.admitted) {
        return {
          action: 'limit',
          rule: outcome.bucket.rule,
          status: enforced.statusOf(outcome.bucket.rule),
          bucket: outcome.bucket,
          retryAfterMs: outcome.retryAfterMs,
        };
      }
    }
    // Shadow buckets are charged like real ones (so they empty as they would),
    // but only for requests the enforced rules let through.
    if (shadowed !== null) {
      const outcome = this.#store.take(shadowed.takes(facts.client, policy), nowMs);
      if (!outcome.admitted) shadow ??= { kind: 'limit', rule: outcome.bucket.rule };
    }
    return allowWith(shadow);
  }
}

function allowWith(shadow: ShadowRefusal | null): AllowDecision {
  return shadow === null ? ALLOW : { action: 'allow', shadow };
}

/** The buckets of the rules one request matched, gathered per scope. */
class MatchedBuckets {
  readonly #ip: BucketSpec[] = [];
  readonly #prefix: BucketSpec[] = [];
  readonly #statusByRule = new Map<string, number>();

  add(rule: CompiledLimitRule): void {
    this.#ip.push(...rule.ipBuckets);
    this.#prefix.push(...rule.prefixBuckets);
    this.#statusByRule.set(rule.name, rule.status);
  }

  statusOf(rule: string): number {
    return this.#statusByRule.get(rule) as number;
  }

  takes(client: ClientKey, policy: CompiledPolicy): BucketTake[] {
    const takes: BucketTake[] = [];
    if (this.#ip.length > 0) takes.push({ key: client.ip, layout: policy.ipLayout, buckets: this.#ip });
    if (this.#prefix.length > 0) takes.push({ key: client.prefix, layout: policy.prefixLayout, buckets: this.#prefix });
    return takes;
  }
}
