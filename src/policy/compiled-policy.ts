import type { PolicyConfig } from '../config/schema.js';
import { CidrSet } from '../identity/cidr-set.js';
import type { BucketLayout } from '../limiter/bucket-spec.js';
import { compileBlock, compileLimits, type CompiledBlockRule, type CompiledLimitRule } from './compiled-rules.js';
import { compileSites, type CompiledSite } from './compiled-site.js';
import { MethodIndex } from './method-rules.js';
import type { SiteSelector } from './site-selection.js';

export type { BucketOwner, CompiledBlockRule, CompiledLimitRule } from './compiled-rules.js';
export { compileRulePath } from './compiled-rules.js';
export type { CompiledSite } from './compiled-site.js';

/** The policy turned into what the engine needs per request: indexes built once, nothing parsed per request. */
export interface CompiledPolicy {
  readonly config: PolicyConfig;
  /** The top-level rules (what the default site applies when no site says `default: true`). */
  readonly limits: MethodIndex<CompiledLimitRule>;
  readonly blocks: MethodIndex<CompiledBlockRule>;
  readonly ipLayout: BucketLayout;
  readonly prefixLayout: BucketLayout;
  /** Clients never limited. */
  readonly allow: CidrSet;
  readonly trustedProxies: CidrSet;
  /** The sites in policy order, then the top-level one (`_default_`) unless a site is the default. */
  readonly sites: readonly CompiledSite[];
  /** Where hosts no site names go. */
  readonly defaultSite: CompiledSite;
  /** Chooses the site for a request's host value (see request-host.ts); null: no usable host (400). */
  readonly selectSite: SiteSelector<CompiledSite>['select'];
}

/** Compiles a validated policy. Pure: the same config always compiles to the same policy. */
export function compilePolicy(config: PolicyConfig): CompiledPolicy {
  const global = compileLimits(config.limits, null);
  const limits = new MethodIndex(global.rules);
  const blockRules = config.block.map(compileBlock);
  const blocks = new MethodIndex(blockRules);
  const allow = CidrSet.parse(config.clients.allow);
  const { sites, defaultSite, selector } = compileSites(config, { limits: global.rules, blocks: blockRules, limitIndex: limits, blockIndex: blocks, allow });
  return {
    config,
    limits,
    blocks,
    ipLayout: global.owner.ipLayout,
    prefixLayout: global.owner.prefixLayout,
    allow,
    trustedProxies: CidrSet.parse(config.clients.trusted_proxies),
    sites,
    defaultSite,
    selectSite: (value) => selector.select(value),
  };
}
