import type { BlockRuleConfig, LimitRuleConfig } from '../config/schema.js';
import { createBucketLayout, type BucketLayout, type BucketScope, type BucketSpec } from '../limiter/bucket-spec.js';
import { blockRuleName } from './block-rule-name.js';
import { compilePathPattern, type PathPattern } from './path-pattern.js';

/**
 * Whose buckets a rule's are: the global rules' (one bucket per client key,
 * whatever the site) or one site's own (keyed by site and client key).
 */
export interface BucketOwner {
  /** Null for the global rules. */
  readonly site: string | null;
  /** Put before the client key: '' for global buckets, `site` and a NUL for a site's own, so no two owners share a key. */
  readonly keyPrefix: string;
  readonly ipLayout: BucketLayout;
  readonly prefixLayout: BucketLayout;
}

/** A `limits` rule ready for matching. */
export interface CompiledLimitRule {
  readonly name: string;
  readonly methods: readonly string[];
  /** Null: every path. */
  readonly paths: readonly PathPattern[] | null;
  readonly ipBuckets: readonly BucketSpec[];
  readonly prefixBuckets: readonly BucketSpec[];
  readonly owner: BucketOwner;
  readonly status: number;
  /** Counts and logs what it would refuse, refuses nothing. */
  readonly shadow: boolean;
}

/** A `block` entry ready for matching. */
export interface CompiledBlockRule {
  readonly name: string;
  /** Null: every method. */
  readonly methods: readonly string[] | null;
  readonly pattern: PathPattern;
  readonly status: number;
  readonly strikes: number;
  /** Counts and logs what it would block, blocks nothing. */
  readonly shadow: boolean;
}

/** Compiles one owner's `limits` rules with their buckets: the global ones (`site` null) or one site's own. */
export function compileLimits(rules: readonly LimitRuleConfig[], site: string | null): { rules: CompiledLimitRule[]; owner: BucketOwner } {
  const ipBuckets: BucketSpec[] = [];
  const prefixBuckets: BucketSpec[] = [];
  const addBucket = (rule: LimitRuleConfig, scope: BucketScope, into: BucketSpec[]): BucketSpec[] => {
    const spec = scope === 'ip' ? rule.per_ip : rule.per_prefix;
    if (!spec) return [];
    const bucket: BucketSpec = {
      id: `${rule.name}/${scope}/${spec.rate.text}/${spec.burst}`,
      rule: rule.name,
      scope,
      ratePerMs: spec.rate.perMs,
      rateText: spec.rate.text,
      burst: spec.burst,
      cost: rule.cost,
      slot: into.length,
    };
    into.push(bucket);
    return [bucket];
  };
  const buckets = rules.map((rule) => ({ rule, ip: addBucket(rule, 'ip', ipBuckets), prefix: addBucket(rule, 'prefix', prefixBuckets) }));
  const owner: BucketOwner = {
    site,
    keyPrefix: site === null ? '' : `${site}\u0000`,
    ipLayout: createBucketLayout('ip', ipBuckets),
    prefixLayout: createBucketLayout('prefix', prefixBuckets),
  };
  return {
    owner,
    rules: buckets.map(({ rule, ip, prefix }) => ({
      name: rule.name,
      methods: rule.methods,
      paths: rule.paths?.map((path) => compileRulePath(path, rule.case_sensitive)) ?? null,
      ipBuckets: ip,
      prefixBuckets: prefix,
      owner,
      status: rule.status,
      shadow: rule.mode === 'shadow',
    })),
  };
}

/** `paths` entries: exact (with PATH_INFO) unless they end in `*`, which makes them a prefix. */
export function compileRulePath(path: string, caseSensitive: boolean): PathPattern {
  return path.endsWith('*')
    ? compilePathPattern({ kind: 'prefix', prefix: path.slice(0, -1), caseSensitive })
    : compilePathPattern({ kind: 'exact', path, caseSensitive });
}

/** Compiles one `block` entry. */
export function compileBlock(rule: BlockRuleConfig): CompiledBlockRule {
  const caseSensitive = rule.case_sensitive;
  const pattern =
    rule.path !== undefined ? compilePathPattern({ kind: 'exact', path: rule.path, caseSensitive })
    : rule.path_prefix !== undefined ? compilePathPattern({ kind: 'prefix', prefix: rule.path_prefix, caseSensitive })
    : compilePathPattern({ kind: 'regex', regex: rule.path_regex as string, caseSensitive });
  return {
    name: blockRuleName(rule),
    methods: rule.methods ?? null,
    pattern,
    status: rule.status,
    strikes: rule.strikes,
    shadow: rule.mode === 'shadow',
  };
}
