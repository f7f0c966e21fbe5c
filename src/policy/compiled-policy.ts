import type { BlockRuleConfig, LimitRuleConfig, PolicyConfig } from '../config/schema.js';
import { CidrSet } from '../identity/cidr-set.js';
import { createBucketLayout, type BucketLayout, type BucketScope, type BucketSpec } from '../limiter/bucket-spec.js';
import { blockRuleName } from './block-rule-name.js';
import { MethodIndex } from './method-rules.js';
import { compilePathPattern, type PathPattern } from './path-pattern.js';

/** A `limits` rule ready for matching. */
export interface CompiledLimitRule {
  readonly name: string;
  readonly methods: readonly string[];
  /** Null: every path. */
  readonly paths: readonly PathPattern[] | null;
  readonly ipBuckets: readonly BucketSpec[];
  readonly prefixBuckets: readonly BucketSpec[];
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

/** The policy turned into what the engine needs per request: indexes built once, nothing parsed per request. */
export interface CompiledPolicy {
  readonly config: PolicyConfig;
  readonly limits: MethodIndex<CompiledLimitRule>;
  readonly blocks: MethodIndex<CompiledBlockRule>;
  readonly ipLayout: BucketLayout;
  readonly prefixLayout: BucketLayout;
  /** Clients never limited. */
  readonly allow: CidrSet;
  readonly trustedProxies: CidrSet;
}

/** Compiles a validated policy. Pure: the same config always compiles to the same policy. */
export function compilePolicy(config: PolicyConfig): CompiledPolicy {
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

  const limits = config.limits.map(
    (rule): CompiledLimitRule => ({
      name: rule.name,
      methods: rule.methods,
      paths: rule.paths?.map((path) => compileRulePath(path, rule.case_sensitive)) ?? null,
      ipBuckets: addBucket(rule, 'ip', ipBuckets),
      prefixBuckets: addBucket(rule, 'prefix', prefixBuckets),
      status: rule.status,
      shadow: rule.mode === 'shadow',
    }),
  );
  const blocks = config.block.map(compileBlock);

  return {
    config,
    limits: new MethodIndex(limits),
    blocks: new MethodIndex(blocks),
    ipLayout: createBucketLayout('ip', ipBuckets),
    prefixLayout: createBucketLayout('prefix', prefixBuckets),
    allow: CidrSet.parse(config.clients.allow),
    trustedProxies: CidrSet.parse(config.clients.trusted_proxies),
  };
}

/** `paths` entries: exact (with PATH_INFO) unless they end in `*`, which makes them a prefix. */
export function compileRulePath(path: string, caseSensitive: boolean): PathPattern {
  return path.endsWith('*')
    ? compilePathPattern({ kind: 'prefix', prefix: path.slice(0, -1), caseSensitive })
    : compilePathPattern({ kind: 'exact', path, caseSensitive });
}

function compileBlock(rule: BlockRuleConfig): CompiledBlockRule {
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
