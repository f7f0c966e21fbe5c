import type { ClientKey } from '../identity/client-key.js';
import type { BucketStore } from '../limiter/bucket-store.js';
import type { CompiledLimitRule, CompiledPolicy, CompiledSite } from '../policy/compiled-policy.js';
import { DEFAULT_SITE_NAME } from '../policy/compiled-site.js';
import { explainClient, type ClientExplanation } from './client-explanation.js';
import type { Ban } from '../escalation/ban.js';
import type { EngineEscalation } from './engine-escalation.js';
import { LimitPlans, planMatched, type MatchPlans } from './limit-plan.js';
import { bucketKeyText, type BucketTake, type TakeOutcome } from '../limiter/bucket-store.js';
import { ALLOW, type AllowDecision, type Decision, type LimitDecision, type PendingSharedTake, type Refusal, type ShadowRefusal } from './decision.js';
import { PathCache } from './path-cache.js';

/** The facts about a request that the engine decides on; nothing about sockets. */
export interface RequestFacts {
  readonly client: ClientKey;
  readonly method: string;
  /** The request-target as forwarded (`/path?query`), before any normalisation. */
  readonly target: string;
  /** Set when the proxy found the request's framing malformed (see request-framing.ts): refused like a bad target. */
  readonly malformed?: MalformedRequest;
  /**
   * An ACME HTTP-01 challenge on a plain listener: exempt from blocks, so
   * certificates keep renewing whatever is blocked, but not from bans or
   * limits (WordPress hands unknown paths to PHP).
   */
  readonly acmeChallenge?: boolean;
  /**
   * The site the request's host chose (`policy.selectSite`); absent: the
   * default site; null: the host is not usable, and the request is refused
   * with 400 before any rule.
   */
  readonly site?: CompiledSite | null;
}

/** A request the proxy cannot forward as sent, and the status Apache would answer it with. */
export interface MalformedRequest {
  readonly status: 400 | 501;
  readonly reason: string;
}

/**
 * Decides what happens to a request: ban (client banned), reject (malformed),
 * block (path), limit (buckets) or allow; each refusal is a strike that may
 * earn a ban. Pure apart from the stores it charges (buckets, strikes, the
 * ban ledger): time comes in as `nowMs`, so the proxy, the benchmarks and any
 * replay of recorded traffic share this exact code (see engine-assembly.ts).
 */
export class DecisionEngine {
  #policy: CompiledPolicy;
  #plans: LimitPlans;
  readonly #paths = new PathCache();
  readonly #store: BucketStore;
  readonly #escalation: EngineEscalation | null;
  readonly #shared: boolean;

  /** `shared`: cluster mode, where an admitted request also needs the shared buckets (see settleShared). */
  constructor(policy: CompiledPolicy, store: BucketStore, escalation: EngineEscalation | null = null, shared = false) {
    this.#policy = policy;
    this.#plans = new LimitPlans();
    this.#store = store;
    this.#escalation = escalation;
    this.#shared = shared;
  }

  get policy(): CompiledPolicy {
    return this.#policy;
  }

  /** Swaps the policy atomically; bucket levels of unchanged rules carry over (see MemoryBucketStore). */
  setPolicy(policy: CompiledPolicy): void {
    this.#plans = new LimitPlans();
    this.#policy = policy;
  }

  /** Decides one request at time `nowMs`: charges its buckets if it is allowed, counts a strike if not. */
  decide(facts: RequestFacts, nowMs: number): Decision {
    const escalation = this.#escalation;
    if (escalation !== null) {
      const ban = escalation.ledger.find(facts.client, nowMs);
      if (ban !== null) return { action: 'ban', status: (facts.site ?? this.#policy.defaultSite).banStatus, target: ban.target, retryAfterMs: ban.expiresMs - nowMs };
    }
    const decision = this.#evaluate(facts, nowMs);
    if (decision.action !== 'allow') this.#strike(facts, decision, nowMs);
    return decision;
  }

  /**
   * Settles a request the node's own buckets admitted with the shared
   * store's answer (cluster mode): admitted, or unavailable, leaves the
   * decision as it was; a refusal gives the local take back (the node's
   * buckets never run ahead of what the cluster admitted), counts a strike,
   * and becomes the limit decision the request is answered with. Synchronous,
   * like decide: the await is the proxy's.
   */
  settleShared(facts: RequestFacts, decision: AllowDecision, outcome: TakeOutcome | { readonly admitted: null }, nowMs: number): AllowDecision | LimitDecision {
    const pending = decision.shared;
    if (pending === undefined || outcome.admitted !== false) return decision;
    this.#store.refund(pending.local, nowMs);
    const limit: LimitDecision = { action: 'limit', rule: outcome.bucket.rule, status: pending.statusOf(outcome.bucket.rule), bucket: outcome.bucket, retryAfterMs: outcome.retryAfterMs };
    this.#strike(facts, limit, nowMs);
    return limit;
  }

  #strike(facts: RequestFacts, decision: Refusal, nowMs: number): void {
    const escalation = this.#escalation;
    if (escalation === null) return;
    // Strikes are global (a ban holds on every site: the kernel cannot see Host); the reason names the site.
    const site = facts.site?.name;
    escalation.escalator.strike(facts.client, decision.action === 'block' ? decision.strikes : 1, decision.action === 'reject' ? 'malformed' : decision.rule, nowMs, site === DEFAULT_SITE_NAME ? undefined : site);
  }

  /**
   * Counts a strike for a client refused before it sent a request the engine
   * could decide on: too many open connections, headers never finished in
   * time, bytes that are no HTTP. A client that only ever does these would
   * otherwise never earn a ban.
   */
  strikeWithoutRequest(client: ClientKey, rule: 'connections' | 'client_timeout' | 'malformed' | 'http2_abuse' | 'tls_handshakes', nowMs: number): void {
    const escalation = this.#escalation;
    if (escalation === null || escalation.ledger.find(client, nowMs) !== null) return;
    escalation.escalator.strike(client, 1, rule, nowMs);
  }

  /** The ban `client` (or its prefix) is under at `nowMs`, if any: the TLS accept gate asks before any handshake. */
  banOf(client: ClientKey, nowMs: number): Ban | null {
    return this.#escalation?.ledger.find(client, nowMs) ?? null;
  }

  /** Why `client` is where it is: bucket levels, strikes, bans (for `portcullis explain`). Charges nothing. */
  explain(client: ClientKey, nowMs: number): ClientExplanation {
    return explainClient({ policy: this.#policy, store: this.#store, escalation: this.#escalation }, client, nowMs);
  }

  #evaluate(facts: RequestFacts, nowMs: number): AllowDecision | Refusal {
    if (facts.malformed !== undefined) return { action: 'reject', status: facts.malformed.status, reason: facts.malformed.reason };
    const site = facts.site === undefined ? this.#policy.defaultSite : facts.site;
    // Apache answers 400 to a Host it cannot read: so does portcullis, before any rule picks a site for it.
    if (site === null) return UNUSABLE_HOST;
    const path = this.#paths.normalize(facts.target);
    if (!path.ok) return { action: 'reject', status: 400, reason: path.reason };

    // Blocks apply to every client, allowlisted or not: they are about the
    // path, and an allowlisted host has no business on /xmlrpc.php either.
    let shadow: ShadowRefusal | null = null;
    for (const block of facts.acmeChallenge === true ? NO_BLOCKS : site.blocks.rulesFor(facts.method)) {
      if (!block.pattern.matches(path.views)) continue;
      if (!block.shadow) return { action: 'block', rule: block.name, status: block.status, strikes: block.strikes };
      shadow ??= { kind: 'block', rule: block.name };
    }
    if (site.allow.has(facts.client.addr)) return allowWith(shadow);

    // Which rules match depends on the method and the path only: a bitmask
    // of them finds the precomputed plan (rules beyond 31 per method are
    // rare enough to be planned per request).
    const rules = site.limits.rulesFor(facts.method);
    let plans: MatchPlans;
    if (rules.length <= 31) {
      let mask = 0;
      for (let i = 0; i < rules.length; i++) {
        const paths = (rules[i] as CompiledLimitRule).paths;
        if (paths === null || paths.some((pattern) => pattern.matches(path.views))) mask |= 1 << i;
      }
      plans = this.#plans.get(rules, mask);
    } else {
      plans = planMatched(rules.filter((rule) => rule.paths === null || rule.paths.some((pattern) => pattern.matches(path.views))));
    }
    let shared: PendingSharedTake | undefined;
    if (plans.enforced !== null) {
      const takes = plans.enforced.takesFor(facts.client);
      const outcome = this.#store.take(takes, nowMs);
      if (!outcome.admitted) {
        return {
          action: 'limit',
          rule: outcome.bucket.rule,
          status: plans.enforced.statusOf(outcome.bucket.rule),
          bucket: outcome.bucket,
          retryAfterMs: outcome.retryAfterMs,
        };
      }
      if (this.#shared) shared = pendingShared(facts.client.prefix, takes, plans.enforced);
    }
    // Shadow buckets are charged like real ones (so they empty as they would),
    // but only for requests the enforced rules let through.
    if (plans.shadow !== null) {
      const outcome = this.#store.take(plans.shadow.takesFor(facts.client), nowMs);
      if (!outcome.admitted) shadow ??= { kind: 'limit', rule: outcome.bucket.rule };
    }
    if (shared !== undefined) return { action: 'allow', shadow, shared };
    return allowWith(shadow);
  }
}

/** A copy of the takes (the plan reuses its array for the next request), for the proxy to await. */
function pendingShared(hashTag: string, takes: readonly BucketTake[], plan: { statusOf(rule: string): number }): PendingSharedTake {
  return {
    take: { hashTag, takes: takes.map((take) => ({ key: bucketKeyText(take.owner, take.layout.scope, take.client), layout: take.layout, buckets: take.buckets })) },
    local: takes.map((take) => ({ owner: take.owner, client: take.client, layout: take.layout, buckets: take.buckets })),
    statusOf: (rule) => plan.statusOf(rule),
  };
}

const NO_BLOCKS: readonly never[] = [];
const UNUSABLE_HOST: Refusal = Object.freeze({ action: 'reject', status: 400, reason: 'no usable Host' });

function allowWith(shadow: ShadowRefusal | null): AllowDecision {
  return shadow === null ? ALLOW : { action: 'allow', shadow };
}
