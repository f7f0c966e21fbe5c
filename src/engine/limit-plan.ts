import type { ClientKey } from '../identity/client-key.js';
import type { BucketSpec } from '../limiter/bucket-spec.js';
import type { BucketTake } from '../limiter/bucket-store.js';
import type { CompiledLimitRule, CompiledPolicy } from '../policy/compiled-policy.js';

/** A take whose key is filled in per request. */
interface ScratchTake {
  key: string;
  readonly layout: BucketTake['layout'];
  readonly buckets: readonly BucketSpec[];
}

/**
 * The buckets a request must pay when a given set of limit rules matched it,
 * gathered once per (method, set of matching rules) and reused for every
 * request that matches the same way. Per request, only the client keys are
 * filled into two preallocated takes: no arrays, maps or objects are built on
 * the hot path (at a million clients the allocation was a third of the cost).
 */
export class LimitPlan {
  readonly #statusByRule: ReadonlyMap<string, number>;
  readonly #ipTake: ScratchTake | null;
  readonly #prefixTake: ScratchTake | null;
  readonly #takes: ScratchTake[];

  constructor(rules: readonly CompiledLimitRule[], policy: CompiledPolicy) {
    const ip = rules.flatMap((rule) => rule.ipBuckets);
    const prefix = rules.flatMap((rule) => rule.prefixBuckets);
    this.#statusByRule = new Map(rules.map((rule) => [rule.name, rule.status]));
    this.#ipTake = ip.length > 0 ? { key: '', layout: policy.ipLayout, buckets: ip } : null;
    this.#prefixTake = prefix.length > 0 ? { key: '', layout: policy.prefixLayout, buckets: prefix } : null;
    this.#takes = [this.#ipTake, this.#prefixTake].filter((take): take is ScratchTake => take !== null);
  }

  /** Status of a refusal by `rule`. */
  statusOf(rule: string): number {
    return this.#statusByRule.get(rule) as number;
  }

  /**
   * The takes for `client`. The array is reused by the next call: hand it to
   * a synchronous `BucketStore.take` and let go of it.
   */
  takesFor(client: ClientKey): readonly BucketTake[] {
    if (this.#ipTake !== null) this.#ipTake.key = client.ip;
    if (this.#prefixTake !== null) this.#prefixTake.key = client.prefix;
    return this.#takes;
  }
}

/** Enforced and shadow plans for one combination of matching rules. */
export interface MatchPlans {
  readonly enforced: LimitPlan | null;
  readonly shadow: LimitPlan | null;
}

const NO_PLANS: MatchPlans = Object.freeze({ enforced: null, shadow: null });

/**
 * Plans of one compiled policy, found by the rules a method selects and a
 * bitmask of which of them matched the path. Bounded: at most 2^n entries
 * for a method with n path-dependent rules, and in practice a handful.
 */
export class LimitPlans {
  readonly #policy: CompiledPolicy;
  readonly #byRules = new Map<readonly CompiledLimitRule[], Map<number, MatchPlans>>();

  constructor(policy: CompiledPolicy) {
    this.#policy = policy;
  }

  /** The plans for `rules` (a method's rules, in order) of which those in `mask` matched. */
  get(rules: readonly CompiledLimitRule[], mask: number): MatchPlans {
    if (mask === 0) return NO_PLANS;
    let byMask = this.#byRules.get(rules);
    if (byMask === undefined) {
      byMask = new Map();
      this.#byRules.set(rules, byMask);
    }
    let plans = byMask.get(mask);
    if (plans === undefined) {
      plans = planMatched(
        rules.filter((_, i) => (mask & (2 ** i)) !== 0),
        this.#policy,
      );
      byMask.set(mask, plans);
    }
    return plans;
  }
}

/** Plans for the rules that matched a request, split into enforced and shadow. */
export function planMatched(matched: readonly CompiledLimitRule[], policy: CompiledPolicy): MatchPlans {
  if (matched.length === 0) return NO_PLANS;
  const enforced = matched.filter((rule) => !rule.shadow);
  const shadow = matched.filter((rule) => rule.shadow);
  return {
    enforced: enforced.length > 0 ? new LimitPlan(enforced, policy) : null,
    shadow: shadow.length > 0 ? new LimitPlan(shadow, policy) : null,
  };
}
