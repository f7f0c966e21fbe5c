import type { PolicyConfig, SiteConfig } from '../config/schema.js';
import { CidrSet } from '../identity/cidr-set.js';
import { blockRuleName } from './block-rule-name.js';
import { compileBlock, compileLimits, type BucketOwner, type CompiledBlockRule, type CompiledLimitRule } from './compiled-rules.js';
import { parseHostPattern, type HostPattern } from './host-pattern.js';
import { MethodIndex } from './method-rules.js';
import { SiteSelector } from './site-selection.js';

/**
 * The name of the top-level policy as a site, for hosts no site names when
 * no site says `default: true` (Apache calls its catch-all `_default_` too).
 * A site name cannot start with `_`, so it never clashes.
 */
export const DEFAULT_SITE_NAME = '_default_';

/** One site's policy as the engine applies it: its own rules and the global ones it keeps, indexed once. */
export interface CompiledSite {
  readonly name: string;
  /** The site as configured; null for the top-level `_default_`. */
  readonly config: SiteConfig | null;
  /** The site's own limits first, then the global ones it neither replaces nor disables. */
  readonly limits: MethodIndex<CompiledLimitRule>;
  /** Same order as limits: own blocks, then the global ones kept. */
  readonly blocks: MethodIndex<CompiledBlockRule>;
  /** Never limited here: the top-level clients.allow and the site's own. */
  readonly allow: CidrSet;
  /** What banned clients are answered with here. */
  readonly banStatus: number;
  /** The buckets of the site's own rules; null when it has none (the global ones are the policy's). */
  readonly owner: BucketOwner | null;
  /** Names of the shadow limit rules in force here. */
  readonly shadowLimits: ReadonlySet<string>;
}

/** The top-level rules, compiled once and shared by every site that keeps them. */
export interface GlobalRules {
  readonly limits: readonly CompiledLimitRule[];
  readonly blocks: readonly CompiledBlockRule[];
  readonly limitIndex: MethodIndex<CompiledLimitRule>;
  readonly blockIndex: MethodIndex<CompiledBlockRule>;
  readonly allow: CidrSet;
}

/**
 * Compiles `sites`: each site's rules are its own followed by the global
 * rules it keeps. A kept global rule is the very same compiled rule, with
 * the same buckets, on every site, so a client has one bucket per global
 * rule however many sites it visits; a site's own rules have buckets keyed
 * by site. Returns the sites in policy order (then `_default_` unless a site
 * is the default) and the selector that picks one for a host.
 */
export function compileSites(config: PolicyConfig, global: GlobalRules): { sites: CompiledSite[]; defaultSite: CompiledSite; selector: SiteSelector<CompiledSite> } {
  const sites = config.sites.map((site) => compileSite(config, site, global));
  const chosenDefault = sites.find((site) => site.config?.default === true);
  const defaultSite = chosenDefault ?? {
    name: DEFAULT_SITE_NAME,
    config: null,
    limits: global.limitIndex,
    blocks: global.blockIndex,
    allow: global.allow,
    banStatus: config.escalation.status,
    owner: null,
    shadowLimits: new Set(global.limits.filter((rule) => rule.shadow).map((rule) => rule.name)),
  };
  const selector = new SiteSelector(
    sites.map((site) => ({ site, patterns: (site.config as SiteConfig).hosts.map((host) => parseHostPattern(host) as HostPattern) })),
    defaultSite,
  );
  return { sites: chosenDefault === undefined ? [...sites, defaultSite] : sites, defaultSite, selector };
}

function compileSite(config: PolicyConfig, site: SiteConfig, global: GlobalRules): CompiledSite {
  const own = compileLimits(site.limits, site.name);
  const ownBlocks = site.block.map(compileBlock);
  const dropped = droppedGlobalRules(site);
  const limits = [...own.rules, ...global.limits.filter((rule) => !dropped.has(rule.name))];
  return {
    name: site.name,
    config: site,
    limits: new MethodIndex(limits),
    blocks: new MethodIndex([...ownBlocks, ...global.blocks.filter((rule) => !dropped.has(rule.name))]),
    allow: site.clients.allow.length === 0 ? global.allow : CidrSet.parse([...config.clients.allow, ...site.clients.allow]),
    banStatus: site.escalation.status ?? config.escalation.status,
    owner: own.rules.length === 0 ? null : own.owner,
    shadowLimits: new Set(limits.filter((rule) => rule.shadow).map((rule) => rule.name)),
  };
}

/** The names of the global rules that do not apply on `site`: those it disables, and those a site rule of the same name replaces, whichever kind either is. */
export function droppedGlobalRules(site: SiteConfig): ReadonlySet<string> {
  return new Set([...site.disable, ...site.limits.map((rule) => rule.name), ...site.block.map(blockRuleName)]);
}
