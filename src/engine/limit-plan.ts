import ipaddr from 'ipaddr.js';
import { makeClientKey, type ClientKey } from '../identity/client-key.js';
import type { BucketSpec } from '../limiter/bucket-spec.js';
import type { BucketTake } from '../limiter/bucket-store.js';
import type { CompiledLimitRule } from '../policy/compiled-policy.js';

/** A take whose client is filled in per request. */
interface ScratchTake {
  client: ClientKey;
  /** '' for global buckets, `site` and a NUL for a site's own (see BucketOwner). */
  readonly owner: string;
  readonly layout: BucketTake['layout'];
  readonly buckets: readonly BucketSpec[];
}

/** Stands in for the client until the first request: a take is never handed out without one. */
const NO_CLIENT = makeClientKey(ipaddr.IPv4.parse('0.0.0.0'), { ipv4: 32, ipv6: 128 });

/**
 * The buckets a request must pay when a given set of limit rules matched it,
 * gathered once per (method, set of matching rules) and reused for every
 * request that matches the same way. Per request, only the client keys are
 * client is filled into preallocated takes (at most four: address and prefix,
 * of the global rules and of the site's own): no arrays, maps, objects or
 * strings are built on the hot path (at a million clients the allocation was
 * a third of the cost).
 */
export class LimitPlan {
  readonly #statusByRule: ReadonlyMap<string, number>;
  readonly #takes: ScratchTake[] = [];

  constructor(rules: readonly CompiledLimitRule[]) {
    this.#statusByRule = new Map(rules.map((rule) => [rule.name, rule.status]));
    const owners = [...new Set(rules.map((rule) => rule.owner))];
    for (const owner of owners) {
      const mine = rules.filter((rule) => rule.owner === owner);
      const ip = mine.flatMap((rule) => rule.ipBuckets);
      const prefix = mine.flatMap((rule) => rule.prefixBuckets);
      if (ip.length > 0) this.#takes.push({ client: NO_CLIENT, owner: owner.keyPrefix, layout: owner.ipLayout, buckets: ip });
      if (prefix.length > 0) this.#takes.push({ client: NO_CLIENT, owner: owner.keyPrefix, layout: owner.prefixLayout, buckets: prefix });
    }
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
    for (const take of this.#takes) take.client = client;
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
 * Plans of one compiled policy, found by the rules a method selects on a
 * site and a bitmask of which of them matched the path. Bounded: at most 2^n
 * entries for a method with n path-dependent rules on a site, and in
 * practice a handful.
 */
export class LimitPlans {
  readonly #byRules = new Map<readonly CompiledLimitRule[], Map<number, MatchPlans>>();

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
      plans = planMatched(rules.filter((_, i) => (mask & (2 ** i)) !== 0));
      byMask.set(mask, plans);
    }
    return plans;
  }
}

/** Plans for the rules that matched a request, split into enforced and shadow. */
export function planMatched(matched: readonly CompiledLimitRule[]): MatchPlans {
  if (matched.length === 0) return NO_PLANS;
  const enforced = matched.filter((rule) => !rule.shadow);
  const shadow = matched.filter((rule) => rule.shadow);
  return {
    enforced: enforced.length > 0 ? new LimitPlan(enforced) : null,
    shadow: shadow.length > 0 ? new LimitPlan(shadow) : null,
  };
}
